-- wrk script for bench/apply.py: counts responses by status code and by which upstream
-- answered (the body is "upstream-a" or "upstream-b"), and prints one line
-- "WRKJSON {...}" with the totals, wrk's error counters and latency percentiles.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  bodies = {}
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  local key = "other"
  if body == "upstream-a" or body == "upstream-b" then
    key = body
  end
  bodies[key] = (bodies[key] or 0) + 1
end

local function object(tbl)
  local parts = {}
  for k, v in pairs(tbl) do
    table.insert(parts, string.format('"%s":%d', tostring(k), v))
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function add(total, part)
  for k, v in pairs(part or {}) do
    local key = tostring(k)
    total[key] = (total[key] or 0) + v
  end
end

function done(summary, latency, requests)
  local all_statuses, all_bodies = {}, {}
  for _, thread in ipairs(threads) do
    add(all_statuses, thread:get("statuses"))
    add(all_bodies, thread:get("bodies"))
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p99":%d,"max":%d},"statuses":%s,"bodies":%s}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max,
    object(all_statuses), object(all_bodies)))
end
