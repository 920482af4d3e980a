-- wrk script: registrations, each with an ID no other request uses, spread over 50 service names.
--   Roster (Consul API):  wrk -t2 -c64 -d10s --latency -s bench/register.lua http://HOST:PORT/v1/agent/service/register
--   etcd (JSON gateway):  wrk -t2 -c64 -d10s --latency -s bench/register.lua http://HOST:PORT/v3/kv/put -- etcd LEASE_FILE
-- IDs are "bench-<thread>-<n>". Both systems get the same service body: Roster as the request
-- body; etcd as the value of the key /services/bench-<k>/<ID> (base64, as the gateway wants for
-- bytes), attached to the leases of LEASE_FILE (one lease ID a line) in turn. Non-200 answers are
-- counted (bench/wrklib.lua).

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrklib.lua")

function init(args)
  n = 0
  etcd = args[1] == "etcd"
  if etcd then
    leases = read_lines(args[2])
    assert(#leases > 0, "no lease IDs in " .. args[2])
  end
  wrk.method = etcd and "POST" or "PUT"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  n = n + 1
  local name, id = string.format("bench-%d", n % 50), string.format("bench-%d-%d", tid, n)
  local body = string.format(
    '{"Name":"%s","ID":"%s","Address":"127.0.0.1","Port":%d,"Tags":["bench","t%d"],"Meta":{"run":"wrk"}}',
    name, id, 10000 + n % 50000, tid)
  if etcd then
    body = string.format('{"key":"%s","value":"%s","lease":"%s"}',
      base64("/services/" .. name .. "/" .. id), base64(body), leases[n % #leases + 1])
  end
  return wrk.format(nil, nil, nil, body)
end
