-- wrk script: multipart uploads of 1 MiB photos, each one different
-- (identical bytes would be answered as duplicates without a write).
local boundary = "wrkBOUNDARY"
local png_sig = "\137PNG\r\n\26\n"
local filler = string.rep("x", 1024 * 1024 - 64)
local counter = 0
local thread_id = 0

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

request = function()
  counter = counter + 1
  local unique = string.format("%08d-%08d", tid or 0, counter)
  local body = "--" .. boundary .. "\r\n"
    .. "Content-Disposition: form-data; name=\"media\"; filename=\"bench.png\"\r\n"
    .. "Content-Type: image/png\r\n\r\n"
    .. png_sig .. unique .. filler
    .. "\r\n--" .. boundary .. "--\r\n"
  return wrk.format("POST", "/api/media/upload",
    { ["Content-Type"] = "multipart/form-data; boundary=" .. boundary }, body)
end

done = function(summary, latency, requests)
  io.write(string.format("uploads_per_sec=%.1f\n", summary.requests / (summary.duration / 1e6)))
  io.write(string.format("non_2xx=%d\n", summary.errors.status))
end
