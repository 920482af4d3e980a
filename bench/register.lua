-- wrk script: Consul-style registrations, each with a service ID no other request uses.
-- Usage: wrk -t2 -c64 -d10s --latency -s bench/register.lua http://HOST:PORT/v1/agent/service/register
-- IDs are "bench-<thread>-<n>", spread over 50 service names; non-200 answers are counted.

local threads = {}
local next_thread = 1

function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

function init(args)
  n = 0
  failures = 0
  wrk.method = "PUT"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  n = n + 1
  local body = string.format(
    '{"Name":"bench-%d","ID":"bench-%d-%d","Address":"127.0.0.1","Port":%d,"Tags":["bench","t%d"],"Meta":{"run":"wrk"}}',
    n % 50, tid, n, 10000 + n % 50000, tid)
  return wrk.format("PUT", nil, nil, body)
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
