-- The readers of bench/tracker_load.py, for wrk (https://github.com/wg/wrk, `apt-get install wrk`),
-- run with one thread (`wrk -t 1 -c CLIENTS -s bench/tracker_wrk.lua`).
--
-- The thread replays the list TRACKER_PLAN (one "METHOD PATH USER-AGENT" a line, already in
-- the order the bench wants them sent), each request exactly once: delay(), which wrk calls
-- before each request of a connection, reserves the next line or parks the connection for
-- good once the list is used up, and request() sends what was reserved (a request after a
-- reconnect that skipped delay() finds nothing reserved and asks for /healthz instead,
-- counted as spare; wrk's own call before the run, to check the script, sends nothing),
-- and when every request has been answered the thread ends the run (SIGINT to wrk's main
-- thread, which otherwise sleeps out its --duration). done() prints one JSON line: the
-- seconds from the first request sent to the last answer, answered and planned requests,
-- statuses other than 200 and 302, socket errors, and wrk's latency percentiles.

local ffi = require("ffi")
ffi.cdef([[
   typedef struct { long tv_sec; long tv_nsec; } timespec;
   int clock_gettime(int clock, timespec *ts);
   int getpid(void);
   long syscall(long number, ...);
]])
local SYS_TGKILL, SIGINT, CLOCK_MONOTONIC = 234, 2, 1 -- x86-64 Linux

local function now()
   local ts = ffi.new("timespec")
   ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
   return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

function init(args)
   requests = {}
   local file = assert(io.open(os.getenv("TRACKER_PLAN"), "r"))
   for line in file:lines() do
      local method, path, agent = line:match("^(%S+) (%S+) (.*)$")
      requests[#requests + 1] = wrk.format(method, path, { ["User-Agent"] = agent })
   end
   file:close()
   planned = #requests
   reserved, sent, spare, answered, bad, bad_statuses = 0, 0, 0, 0, 0, ""
   spare_request = wrk.format("GET", "/healthz")
   first_sent, last_answered = 0, 0
end

function delay()
   if reserved >= planned then
      return 3600000 -- the list is used up: this connection sends nothing more
   end
   reserved = reserved + 1
   return 0
end

function request()
   if reserved == 0 then
      return requests[1] -- wrk's check of the script before the run: not sent
   end
   if sent >= reserved then
      spare = spare + 1
      return spare_request
   end
   if sent == 0 then
      first_sent = now()
   end
   sent = sent + 1
   return requests[sent]
end

function response(status, headers, body)
   answered = answered + 1
   if status ~= 200 and status ~= 302 then
      bad = bad + 1
      if bad <= 3 then
         bad_statuses = bad_statuses .. " " .. status
      end
   end
   if answered == planned then -- a spare answer stands for a lost one
      last_answered = now()
      local pid = ffi.C.getpid()
      ffi.C.syscall(SYS_TGKILL, ffi.cast("long", pid), ffi.cast("long", pid), ffi.cast("long", SIGINT))
   end
end

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function done(summary, latency, rates)
   local t = threads[1]
   local e = summary.errors
   io.write(string.format(
      '{"seconds": %.6f, "answered": %d, "planned": %d, "sent": %d, "spare": %d, "bad_status": %d, "statuses": "%s", '
         .. '"connect": %d, "read": %d, "write": %d, "timeout": %d, '
         .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
      t:get("last_answered") - t:get("first_sent"), t:get("answered"), t:get("planned"),
      t:get("sent"), t:get("spare"),
      t:get("bad"), t:get("bad_statuses"), e.connect, e.read, e.write, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
