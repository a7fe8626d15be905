-- wrk script: POSTs the benchmark message with fresh ids on every request,
-- so that courier processes each one (a repeated id would be a duplicate).
-- Optional pacing: RATE (requests per second for the whole run) and
-- CONNECTIONS in the environment make each connection wait its share.
local pieces = nil  -- the template split around its id placeholders
local counter = 0
thread_id = 0  -- a global: setup() gives each thread its own with thread:set
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(os.getenv("MESSAGE_TEMPLATE"), "r"))
  local template = f:read("*a")
  f:close()
  -- Split once, so that each request only joins strings (wrk's Lua runs on
  -- the client's threads; every microsecond there is one the server loses).
  pieces = {}
  local rest = template
  while true do
    local s, e, name = rest:find("__([A-Z]+)_ID__")
    if not s then break end
    table.insert(pieces, rest:sub(1, s - 1))
    table.insert(pieces, name)
    rest = rest:sub(e + 1)
  end
  table.insert(pieces, rest)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = os.getenv("CONTENT_TYPE") or "application/fhir+json"
end

function request()
  counter = counter + 1
  local bundle_id = string.format("%08x-%04x-4000-8000-%012x", thread_id, counter % 65536, counter)
  local header_id = string.format("%08x-%04x-4000-9000-%012x", thread_id, counter % 65536, counter)
  local parts = {}
  for i, piece in ipairs(pieces) do
    if i % 2 == 1 then
      parts[i] = piece
    else
      parts[i] = piece == "BUNDLE" and bundle_id or header_id
    end
  end
  return wrk.format(nil, nil, nil, table.concat(parts))
end

local rate = tonumber(os.getenv("RATE") or "0")
local connections = tonumber(os.getenv("CONNECTIONS") or "1")
if rate > 0 then
  function delay()
    return connections * 1000 / rate
  end
end
