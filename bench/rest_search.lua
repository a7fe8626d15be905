-- wrk script: searches the store filled by rest_create.lua. SEARCH=identifier
-- asks for a random identifier ORD-<1|2>-<n>, n up to PER_THREAD; each wrk
-- run that filled the store numbered from 1 again, so an identifier names
-- one order per fill run (about ten at 100,000 stored). SEARCH=tag asks for
-- the active, actionable orders (a page of 50).
local kind = os.getenv("SEARCH") or "identifier"
local per_thread = tonumber(os.getenv("PER_THREAD") or "1000")
local tag = "_tag=http://terminology.hl7.org/CodeSystem/common-tags%7Cactionable&status=active&_count=50"

function init(args)
  math.randomseed(os.time() + (args[1] and #args[1] or 0))
end

function request()
  if kind == "tag" then
    return wrk.format("GET", "/fhir/ServiceRequest?" .. tag)
  end
  local id = "ORD-" .. math.random(1, 2) .. "-" .. math.random(1, per_thread)
  return wrk.format("GET", "/fhir/ServiceRequest?identifier=urn:oid:1.2.36.1.146595217.1.2%7C" .. id)
end
