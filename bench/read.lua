-- wrk script: discovery reads of one service, as a client-side load balancer polls it.
--   Roster:  wrk -t2 -c64 -d10s --latency -s bench/read.lua http://HOST:PORT/v1/health/service/web
--   etcd:    wrk -t2 -c64 -d10s --latency -s bench/read.lua http://HOST:PORT/v3/kv/range -- POST 'JSON'
-- (for etcd the JSON is a serializable range over the service's key prefix). Non-200 answers are
-- counted (bench/wrklib.lua), so a failing endpoint cannot pass for a fast one.

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrklib.lua")

function init(args)
  wrk.method = args[1] or "GET"
  wrk.body = args[2]
  wrk.headers["Accept"] = "application/json"
  if wrk.body then
    wrk.headers["Content-Type"] = "application/json"
  end
end
