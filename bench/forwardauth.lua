-- wrk script for bench/inline.sh: forward-auth requests as Traefik or Caddy
-- send them, for a few hundred credentials, each from its own client
-- address, over a handful of endpoints and object ids.
local tokens, paths = {}, {"/v1/orders", "/v1/accounts/%d", "/v1/contacts/%d", "/v1/deals", "/v1/me"}
local n = tonumber(os.getenv("TOKENS") or "500")
local counter = 0

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
  for i = 1, n do
    tokens[i] = string.format("bench-token-%06d-%08x", i, math.random(0, 0x7fffffff))
  end
end

function request()
  counter = counter + 1
  local i = math.random(1, n)
  local p = string.format(paths[math.random(1, #paths)], math.random(1, 5000))
  return wrk.format("GET", "/v1/forward-auth", {
    ["Authorization"] = "Bearer " .. tokens[i],
    ["User-Agent"] = "bench-client/1.0",
    ["X-Forwarded-Method"] = "GET",
    ["X-Forwarded-Uri"] = p,
    ["X-Forwarded-Host"] = "api.example.com",
    ["X-Forwarded-For"] = string.format("198.51.%d.%d", i % 200, i % 250 + 1),
  })
end
