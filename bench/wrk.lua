-- wrk script for bench/wrk.py. Environment:
--   BENCH_TOKENS      a file of tokens, one a line: each request sends the next one
--   BENCH_HEADERS     a file of requests' headers, one request a line, "Name: value" pairs
--                     separated by tabs (DPoP: each request its own proof)
--   BENCH_FLOOD       "prefix|suffix": each request sends a new token, prefix..%010d..suffix
--   BENCH_STOP_AFTER  after this many responses, stop and create the file BENCH_DONE_FILE
--                     (wrk itself waits out -d; wrk.py then ends it early with SIGINT)
-- done() prints one line, "BENCH {json}", that wrk.py reads.
local tokens_path = os.getenv("BENCH_TOKENS")
local headers_path = os.getenv("BENCH_HEADERS")
local flood = os.getenv("BENCH_FLOOD")
local stop_after = tonumber(os.getenv("BENCH_STOP_AFTER") or "")
local i = 0

if tokens_path or headers_path then
  -- Every request is formatted once, in init, as wrk's docs advise: formatting a request per
  -- request costs wrk CPU that the scenario would then lack (this machine has two cores).
  local requests, count = {}, 0
  init = function()
    for line in io.lines(tokens_path or headers_path) do
      local headers = {}
      if tokens_path then
        headers.Authorization = "Bearer " .. line
      else
        for name, value in line:gmatch("([^\t:]+): ([^\t]*)") do
          headers[name] = value
        end
      end
      count = count + 1
      requests[count] = wrk.format(nil, nil, headers)
    end
  end
  request = function()
    i = i % count + 1
    return requests[i]
  end
elseif flood then
  local prefix, suffix = flood:match("^([^|]*)|(.*)$")
  request = function()
    i = i + 1
    return wrk.format(nil, nil, { Authorization = string.format("Bearer %s%010d%s", prefix, i, suffix) })
  end
end

if stop_after then
  local seen = 0
  response = function()
    seen = seen + 1
    if seen == stop_after then
      io.open(os.getenv("BENCH_DONE_FILE"), "w"):close()
      wrk.thread:stop()
    end
  end
end

done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"non_2xx":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
