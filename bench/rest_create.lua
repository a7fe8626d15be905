-- wrk script: POSTs a ~1 KB ServiceRequest with a fresh identifier on every
-- request (ORD-<thread>-<n>). One in ten is active and one in a hundred
-- carries the actionable tag, so that searches on them select a realistic
-- share of a large store.
local counter = 0
thread_id = 0  -- a global: setup() gives each thread its own with thread:set
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/fhir+json"
end

local note = string.rep("Fasting sample; patient on metformin. ", 12)

function request()
  counter = counter + 1
  local tag = ""
  if counter % 100 == 0 then
    tag = '"meta":{"tag":[{"system":"http://terminology.hl7.org/CodeSystem/common-tags","code":"actionable"}]},'
  end
  local status = (counter % 10 == 0) and "active" or "completed"
  local body = '{"resourceType":"ServiceRequest",' .. tag ..
    '"identifier":[{"system":"urn:oid:1.2.36.1.146595217.1.2","value":"ORD-' .. thread_id .. '-' .. counter .. '"}],' ..
    '"status":"' .. status .. '","intent":"order","priority":"routine",' ..
    '"code":{"coding":[{"system":"http://loinc.org","code":"24323-8","display":"Comprehensive metabolic 2000 panel"}]},' ..
    '"subject":{"reference":"Patient/p' .. (counter % 5000) .. '"},' ..
    '"requester":{"reference":"Practitioner/dr-' .. (counter % 200) .. '"},' ..
    '"performer":[{"reference":"Organization/lab"}],' ..
    '"authoredOn":"2026-11-26T09:14:47+01:00",' ..
    '"note":[{"text":"' .. note .. '"}]}'
  return wrk.format(nil, nil, nil, body)
end
