-- wrk script for benchmarks/serving.py: POSTs pre-encoded search bodies in turn and prints one
-- JSON line of results. Bodies come from the file named by WRK_BODIES (one body per line), the
-- content type from WRK_CONTENT_TYPE (binary bodies are written hex-encoded, one per line).
local requests = {}
local counter = 0

function init(args)
  local content_type = os.getenv("WRK_CONTENT_TYPE") or "application/json"
  local hex = content_type == "application/octet-stream"
  local path = os.getenv("WRK_PATH") or "/v1/search"
  for line in io.lines(os.getenv("WRK_BODIES")) do
    local body = line
    if hex then
      body = line:gsub("..", function(byte) return string.char(tonumber(byte, 16)) end)
    end
    requests[#requests + 1] = wrk.format("POST", path, {["Content-Type"] = content_type}, body)
  end
  counter = math.random(#requests) - 1
end

function request()
  counter = counter % #requests + 1
  return requests[counter]
end

function done(summary, latency, requests_)
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "non2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
