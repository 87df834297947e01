-- wrk script of bench/api_bench.py: GET requests rotating over a fixed list of paths.
--
--   wrk -t2 -c16 -d15s --latency --timeout 60s -s bench/api_bench_rotate.lua http://127.0.0.1:PORT -- PATHS.txt
--
-- PATHS.txt holds one path (with its query string) a line. Every thread walks the whole list in
-- order, each starting at a different place, so that all the paths are requested about equally
-- often whatever the duration. No response() callback: wrk then does not buffer the bodies, and
-- counts non-2xx/3xx answers itself ("Non-2xx or 3xx responses").

local threads_started = 0

function setup(thread)
   thread:set("tid", threads_started)
   threads_started = threads_started + 1
end

local paths = {}
local i = 1

function init(args)
   local file = args[1]
   if file == nil then
      error("give the file of paths after --")
   end
   for line in io.lines(file) do
      if #line > 0 then
         paths[#paths + 1] = line
      end
   end
   if #paths == 0 then
      error("no paths in " .. file)
   end
   -- tid is set by setup() before init() runs in the thread
   local t = tonumber(tid) or 0
   i = ((t * 7919) % #paths) + 1
end

function request()
   local p = paths[i]
   i = i + 1
   if i > #paths then
      i = 1
   end
   return wrk.format("GET", p)
end
