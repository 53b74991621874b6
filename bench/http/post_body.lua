-- wrk script for the HTTP example (scripts/bench_http.sh): every request is
-- POST /work with the same body of BODY_SIZE bytes (default 4096): words and
-- runs of repeated bytes, so that the PackBits step has runs to find.
local size = tonumber(os.getenv("BODY_SIZE") or "4096")
local pieces = {
  "sluice ", "gate ", "water ", "flows ", "through ", "the ", "channel ",
  "----------------", "                ", "0000000000000000000000000000",
}
local parts, n, i = {}, 0, 0
while n < size do
  i = i + 1
  local p = pieces[(i * 7) % #pieces + 1]
  parts[#parts + 1] = p
  n = n + #p
end
wrk.method = "POST"
wrk.path = "/work"
wrk.body = table.concat(parts):sub(1, size)
wrk.headers["Content-Type"] = "application/octet-stream"
