-- wrk script used by bench/run: prints one machine-readable summary line.
-- It defines only done(), so wrk's hot path (request/response) stays in C.

-- CPU ticks (utime + stime, in USER_HZ) used by this wrk process so far;
-- bench/run uses it to tell its own load apart from other load on the box.
local function self_cpu_ticks()
  local f = io.open("/proc/self/stat", "r")
  if not f then return -1 end
  local s = f:read("*l")
  f:close()
  local rest = s and s:match("^.*%) (.*)$")
  if not rest then return -1 end
  local i, ut, st = 0, 0, 0
  for v in rest:gmatch("%S+") do
    i = i + 1
    if i == 12 then
      ut = tonumber(v)
    elseif i == 13 then
      st = tonumber(v)
      break
    end
  end
  return ut + st
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%.0f duration_us=%.0f bytes=%.0f p50_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f " ..
    "err_connect=%.0f err_read=%.0f err_write=%.0f err_status=%.0f err_timeout=%.0f wrk_cpu_ticks=%.0f\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout, self_cpu_ticks()))
end
