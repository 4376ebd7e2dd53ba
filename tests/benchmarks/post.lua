-- wrk script: POST the file named by BENCH_BODY as JSON on every request (suite.py sets it).
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
