-- Shared by the wrk scripts of bench/ (loaded with dofile): numbers the threads (the global `tid`
-- of each thread), counts non-200 answers, base64 for etcd's JSON gateway, and at the end prints
--   non-200 answers: N
--   wrk-json: {"requests":..,"duration_s":..,"rps":..,"p50_ms":..,"p90_ms":..,"p99_ms":..,...}
-- The first line is read by scripts/bench.sh, the second by bench/etcd_bench.py.

local threads = {}
local next_thread = 1

function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

failures = 0

function response(status, headers, body)
  if status ~= 200 then
    failures = failures + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("failures") or 0)
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format("non-200 answers: %d\n", bad))
  io.write(string.format(
    'wrk-json: {"requests":%d,"duration_s":%.3f,"rps":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,' ..
    '"max_ms":%.3f,"non200":%d,"socket_errors":%d}\n',
    summary.requests, seconds, summary.requests / seconds, latency:percentile(50) / 1e3,
    latency:percentile(90) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3, bad,
    e.connect + e.read + e.write + e.timeout))
end

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local digit = {}
for i = 0, 63 do
  digit[i] = alphabet:sub(i + 1, i + 1)
end

-- Standard base64 with padding, 3 bytes at a time.
function base64(s)
  local out, n = {}, #s
  local padded = s .. "\0\0"
  for i = 1, n, 3 do
    local a, b, c = padded:byte(i, i + 2)
    local v = a * 65536 + b * 256 + c
    out[#out + 1] = digit[math.floor(v / 262144)] .. digit[math.floor(v / 4096) % 64]
      .. digit[math.floor(v / 64) % 64] .. digit[v % 64]
  end
  local text = table.concat(out)
  local pad = (3 - n % 3) % 3
  return text:sub(1, #text - pad) .. string.rep("=", pad)
end

function read_lines(path)
  local lines = {}
  local f = assert(io.open(path, "r"), "cannot open " .. tostring(path))
  for line in f:lines() do
    if line ~= "" then
      table.insert(lines, line)
    end
  end
  f:close()
  return lines
end
