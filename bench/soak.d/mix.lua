-- wrk script for bench/soak: a weighted mix of normal and faulty routes; counts statuses.
-- Per 1000 requests: 895 GET proxied, 40 POST proxied, 30 refused upstream, 20 resetting
-- upstream, 5 slow upstream (300 ms timeout: kept under 1 % so p99 shows the rest), 10 mock.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  n = 0
  local body = string.rep("x", 512)
  r_ok = wrk.format("GET", "/ok/index.html")
  r_post = wrk.format("POST", "/post", { ["Content-Type"] = "text/plain" }, body)
  r_refused = wrk.format("GET", "/refused")
  r_reset = wrk.format("GET", "/reset")
  r_slow = wrk.format("GET", "/slow")
  r_mock = wrk.format("GET", "/mock")
end

function request()
  n = n + 1
  local k = n % 1000
  if k < 895 then return r_ok
  elseif k < 935 then return r_post
  elseif k < 965 then return r_refused
  elseif k < 985 then return r_reset
  elseif k < 990 then return r_slow
  else return r_mock end
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "SOAK requests=%.0f p50_us=%.0f p99_us=%.0f max_us=%.0f err_connect=%.0f err_read=%.0f " ..
    "err_write=%.0f err_timeout=%.0f\n",
    summary.requests, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.timeout))
  local agg = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do agg[k] = (agg[k] or 0) + v end
  end
  for k, v in pairs(agg) do io.write(string.format("SOAK_STATUS %d %d\n", k, v)) end
end
