-- wrk script: Consul health reads of one service, as a client-side load balancer polls it.
-- Usage: wrk -t2 -c64 -d10s --latency -s bench/read.lua http://HOST:PORT/v1/health/service/web
-- Non-200 answers are counted, so a failing endpoint cannot pass for a fast one.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  failures = 0
  wrk.method = "GET"
  wrk.headers["Accept"] = "application/json"
end

function response(status, headers, body)
  if status ~= 200 then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do
    total = total + (t:get("failures") or 0)
  end
  io.write(string.format("non-200 answers: %d\n", total))
end
