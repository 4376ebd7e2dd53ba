"""Grading: compare a learner's answer with the reference and name the mistake (pure: no web imports).

GRADING_RULES_VERSION changes whenever a rule that can change a grade changes (tolerances, the
catalogue of mistakes, error carried forward), so a regrade can be reproduced.
"""

# 2.0: error carried forward only from a catalogued mistake, for a share of the points (default 0.5)
GRADING_RULES_VERSION = "2.0"
