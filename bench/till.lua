-- wrk script for bench/till.py: one wrk thread and one connection per simulated till.
--
--   wrk -t16 -c16 -d15s -s bench/till.lua http://127.0.0.1:8000 -- MODE DATAFILE NONCE REDEEM OCCURRED_AT
--
-- MODE        sales    identify a member, then commit a 5-line sale for them (REDEEM share of
--                      the sales also redeem 100-500 points), and again
--             identify identify calls only
--             bare     POST a small JSON body to /echo (bench/bare_flask.py, the baseline)
-- DATAFILE    written by till.py: "key <terminal key>" lines (one per till) and "code <QR>" lines
-- NONCE       external_ids are <NONCE>-<till>-<counter>, and the counter starts again at 1 in every
--             wrk run, so NONCE must differ per wrk run (till.py passes <run nonce>r<wrk run>)
-- REDEEM      share of sales that redeem points (0.2)
-- OCCURRED_AT the sales' occurred_at, ISO 8601 with an offset
--
-- done() prints one line "BENCH_JSON {...}": counts by call and status, and latency percentiles:
-- measured here per request (from just before wrk writes it to just after its response is read),
-- for every request ("all") and per call kind, and wrk's own histogram (see wrk_latency below).

local ffi = require("ffi")
ffi.cdef([[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]])
local timespec = ffi.new("bench_timespec")
local CLOCK_MONOTONIC = 1

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) * 1000000 + tonumber(timespec.tv_nsec) / 1000
end

-- Main state: hand each thread its till number and keep the threads for done().
local threads = {}
local next_till = 1

function setup(thread)
  thread:set("till", next_till)
  next_till = next_till + 1
  table.insert(threads, thread)
end

-- Thread state.
local mode, nonce, redeem_share, occurred_at
local key, codes
local counter = 0
local next_kind = "identify"
local current_code
local pending_kind, pending_start
-- Filled in per thread, read back by done() through thread:get(). Flat tables only: wrk 4.1
-- crashes copying a table nested in another between threads.
stats = {}
samples_identify, samples_sale, samples_bare = {}, {}, {}
local samples = { identify = samples_identify, sale = samples_sale, bare = samples_bare }

local SKUS = {
  { "MILK-1L", "dairy" }, { "BREAD-WH", "bakery" }, { "COFFEE-500", "pantry" },
  { "APPLES-1KG", "produce" }, { "WINE-RED", "drinks" }, { "CHEESE-CHD", "dairy" },
  { "NAPPIES-M", "baby" }, { "WIPES", "baby" }, { "PASTA-500", "pantry" },
  { "EGGS-12", "dairy" }, { "SOAP-BAR", "household" }, { "TEA-80", "pantry" },
}

local function read_data(path)
  local keys, found = {}, {}
  for line in io.lines(path) do
    local kind, value = line:match("^(%S+) (%S+)$")
    if kind == "key" then
      table.insert(keys, value)
    elseif kind == "code" then
      table.insert(found, value)
    end
  end
  return keys, found
end

function init(args)
  mode = args[1]
  nonce = args[3] or tostring(os.time())
  redeem_share = tonumber(args[4] or "0.2")
  occurred_at = args[5]
  coupon = args[6] or ""
  math.randomseed(os.time() * 1000 + till)
  if mode ~= "bare" then
    local keys
    keys, codes = read_data(args[2])
    key = keys[(till - 1) % #keys + 1]
  end
end

local function count(name)
  stats[name] = (stats[name] or 0) + 1
end

local function sale_body()
  counter = counter + 1
  local lines = {}
  for i = 1, 5 do
    local sku = SKUS[math.random(#SKUS)]
    lines[i] = string.format(
      '{"sku":"%s","category":"%s","quantity":%d,"unit_price":%d}',
      sku[1], sku[2], math.random(1, 3), math.random(199, 1999)
    )
  end
  local redeem = 0
  if math.random() < redeem_share then
    redeem = 100 * math.random(1, 5)
    count("sale_redeem_sent")
  end
  local coupons = ""
  if coupon ~= "" then
    coupons = string.format(',"coupon_codes":["%s"]', coupon)
  end
  return string.format(
    '{"external_id":"%s-%d-%d","occurred_at":"%s","code":"%s","lines":[%s],"redeem_points":%d%s}',
    nonce, till, counter, occurred_at, current_code, table.concat(lines, ","), redeem, coupons
  )
end

local function till_headers()
  return {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. key,
  }
end

function request()
  local req
  if mode == "bare" then
    pending_kind = "bare"
    req = wrk.format("POST", "/echo", { ["Content-Type"] = "application/json" },
                     '{"code":"L1000000000000000AAAAAAAAAAAAAAAA"}')
  elseif mode == "identify" or next_kind == "identify" then
    current_code = codes[math.random(#codes)]
    pending_kind = "identify"
    if mode == "sales" then
      next_kind = "sale"
    end
    req = wrk.format("POST", "/api/v1/pos/identify", till_headers(),
                     string.format('{"code":"%s"}', current_code))
  else
    pending_kind = "sale"
    next_kind = "identify"
    req = wrk.format("POST", "/api/v1/pos/transactions", till_headers(), sale_body())
  end
  pending_start = now_us()
  return req
end

function response(status, headers, body)
  if pending_kind == nil then
    return
  end
  local kind = pending_kind
  pending_kind = nil
  local list = samples[kind]
  list[#list + 1] = now_us() - pending_start
  count(kind .. "_" .. status)
  if status < 200 or status > 299 then
    count("non2xx")
  end
end

-- Main state again, after the run.
local function percentile(sorted, p)
  if #sorted == 0 then
    return nil
  end
  local index = math.max(1, math.ceil(#sorted * p / 100))
  return sorted[index]
end

local function json_value(value)
  if value == nil then
    return "null"
  elseif type(value) == "number" then
    return string.format("%.3f", value)
  end
  return string.format('"%s"', tostring(value))
end

local function json_object(tbl)
  local parts = {}
  for name, value in pairs(tbl) do
    local text
    if type(value) == "table" then
      text = json_object(value)
    else
      text = json_value(value)
    end
    table.insert(parts, string.format('"%s":%s', name, text))
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
  local counts = {}
  local merged = { identify = {}, sale = {}, bare = {} }
  for _, thread in ipairs(threads) do
    for name, value in pairs(thread:get("stats") or {}) do
      counts[name] = (counts[name] or 0) + value
    end
    for kind, into in pairs(merged) do
      for _, value in ipairs(thread:get("samples_" .. kind) or {}) do
        into[#into + 1] = value
      end
    end
  end
  local all = {}
  for _, list in pairs(merged) do
    for _, value in ipairs(list) do
      all[#all + 1] = value
    end
  end
  merged.all = all
  local by_kind = {}
  for kind, list in pairs(merged) do
    if #list > 0 then
      table.sort(list)
      by_kind[kind] = {
        n = #list,
        p50_ms = percentile(list, 50) / 1000,
        p95_ms = percentile(list, 95) / 1000,
        p99_ms = percentile(list, 99) / 1000,
        max_ms = list[#list] / 1000,
      }
    end
  end
  local result = {
    duration_s = summary.duration / 1000000,
    requests = summary.requests,
    bytes = summary.bytes,
    errors = {
      connect = summary.errors.connect,
      read = summary.errors.read,
      write = summary.errors.write,
      status = summary.errors.status,
      timeout = summary.errors.timeout,
    },
    -- wrk's own histogram. wrk 4 "corrects" it for coordinated omission before done() (it adds
    -- samples for the requests a till would have sent during a slow one), so its high
    -- percentiles are above the measured ones in by_kind.all.
    wrk_latency = {
      p50_ms = latency:percentile(50) / 1000,
      p95_ms = latency:percentile(95) / 1000,
      p99_ms = latency:percentile(99) / 1000,
      max_ms = latency.max / 1000,
      mean_ms = latency.mean / 1000,
    },
    by_kind = by_kind,
    counts = counts,
  }
  io.write("BENCH_JSON " .. json_object(result) .. "\n")
end
