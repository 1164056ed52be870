-- wrk: POST /set with keys no other run or thread uses; counts the 200 answers.
-- wrk -t1 -c4 -d10s -s benchmarks/set.lua http://host:port -- <key prefix>
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  prefix = (args[1] or "w") .. "-" .. tid .. "-"
  counter = 0
  ok = 0
  value = string.rep("v", 32)
end

function request()
  counter = counter + 1
  local body = '{"key":"' .. prefix .. counter .. '","value":"' .. value .. '"}'
  return wrk.format("POST", "/set", {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("ok")
  end
  io.write(string.format("ACCEPTED %d\n", total))
end
