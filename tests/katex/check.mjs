// Reads a JSON array of LaTeX strings on stdin; prints a JSON array of {index, error} for the
// strings KaTeX cannot render (an empty array when all parse). Exit code 0 either way; 2 when
// the input is not a JSON array (of strings).
import katex from "katex";

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on("data", (chunk) => chunks.push(chunk));
    process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    process.stdin.on("error", reject);
  });
}

const input = await readStdin();
let strings;
try {
  strings = JSON.parse(input);
} catch (err) {
  process.stderr.write(`check.mjs: stdin is not valid JSON: ${err.message}\n`);
  process.exit(2);
}
if (!Array.isArray(strings)) {
  process.stderr.write("check.mjs: stdin must be a JSON array of LaTeX strings\n");
  process.exit(2);
}

const failures = [];
strings.forEach((s, index) => {
  if (typeof s !== "string") {
    failures.push({ index, error: `not a string: ${JSON.stringify(s)}` });
    return;
  }
  try {
    katex.renderToString(s, { throwOnError: true, displayMode: true });
  } catch (err) {
    failures.push({ index, error: String(err && err.message ? err.message : err) });
  }
});
process.stdout.write(JSON.stringify(failures) + "\n");
