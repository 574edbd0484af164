-- Portway's fast path: routes and certificates in nginx shared memory, changed by a
-- push over the control socket without a reload (portway/nginx/fastpath.py writes
-- the snapshot and pushes; FASTPATH.md is the contract).
--
-- Shared dicts (sized by Python, see fastpath.py):
--   portway_routes  name -> route (a JSON text built by Python; decoded once per worker
--                   and cached until the next change set, see lookup)
--   portway_sni     name or "*.parent" -> certificate fingerprint
--   portway_certs   fingerprint -> "<fullchain PEM>\0<key PEM>"
--   portway_meta    "generation" -> number (Python's), "version" -> number (bumped by
--                   every change set), "default" -> the default site (JSON text)
--
-- Per request the work is one dict read, one cache read and a few variable writes;
-- JSON is decoded only when a route's text changed.

local cjson = require("cjson.safe")
local lrucache = require("resty.lrucache")

local ngx = ngx
local ngx_var = ngx.var
local ngx_exit = ngx.exit
local ngx_redirect = ngx.redirect
local re_find = ngx.re.find
local null = cjson.null
local type = type
local pairs = pairs
local ipairs = ipairs
local tostring = tostring

local routes = ngx.shared.portway_routes
local sni = ngx.shared.portway_sni
local certs = ngx.shared.portway_certs
local meta = ngx.shared.portway_meta

local _M = {}

-- settings from the snapshot (fixed for the life of this configuration)
local settings = {
    https_suffix = "",   -- ":8443" when clients reach HTTPS on a port other than 443
    logs = "",           -- directory of the per-host logs
    exploits = {},       -- {variable name, PCRE} pairs answered 403 (render.py's list)
}

local ROUTE_CACHE = 20000
local CERT_CACHE = 10000
local route_cache = lrucache.new(ROUTE_CACHE)
local cert_cache = lrucache.new(CERT_CACHE)
local site_cache = { version = nil, site = nil }
local NO_ROUTE = {}
local round_robin = 0

local REDIRECT_CODES = { [301] = true, [302] = true, [303] = true, [307] = true, [308] = true }

-- ----- decoding --------------------------------------------------------------------

local function prepare(route)
    -- what every request of the route needs, computed once
    if route.key then
        route.log = settings.logs .. "/" .. route.key .. "_access.log"
    end
    if route.kind == "proxy" then
        local peers = route.peers
        if peers and #peers > 0 then
            for _, peer in ipairs(peers) do
                -- set_current_peer reads "::1" as host ":" and port ":1" (invalid port)
                if peer[1]:find(":", 1, true) then
                    peer[1] = "[" .. peer[1] .. "]"
                end
            end
            local first = peers[1]
            route.target = route.scheme .. "://" .. first[1] .. ":" .. first[2]
            -- what the balancer is told (a variable: cheaper than ngx.ctx per request)
            local listed = {}
            for index, peer in ipairs(peers) do
                listed[index] = peer[1] .. " " .. peer[2]
            end
            route.peer_list = table.concat(listed, " ")
        else
            route.target = route.scheme .. "://" .. (route.forward_host or "")
        end
        route.pass = route.pool or "http://portway_dynamic"
    end
    return route
end

-- The worker's cache holds decoded routes (and "no route") for the shared memory's
-- version it was filled at; every applied change set bumps the version, and a worker
-- that sees a new one drops its cache. Per request that is one number read from
-- shared memory and one cache read: no route text copied, no JSON decoded.
local cached_version = nil

local function lookup(host)
    local version = meta:get("version")
    if version ~= cached_version then
        route_cache:flush_all()
        cached_version = version
    end
    local route = route_cache:get(host)
    if route ~= nil then
        if route == NO_ROUTE then
            return nil
        end
        return route
    end
    local raw = routes:get(host)
    if raw == nil then
        route_cache:set(host, NO_ROUTE)
        return nil
    end
    route = cjson.decode(raw)
    if type(route) ~= "table" then
        ngx.log(ngx.ERR, "portway: route of ", host, " does not decode")
        return nil
    end
    route_cache:set(host, prepare(route))
    return route
end

local function default_site()
    local version = meta:get("version")
    if site_cache.site == nil or site_cache.version ~= version then
        local raw = meta:get("default")
        site_cache.site = raw and cjson.decode(raw) or { value = "congratulations", html = "" }
        site_cache.version = version
    end
    return site_cache.site
end

-- ----- request phase (rewrite_by_lua in the router's location /) -------------------

local function serve_default_site()
    local site = default_site()
    local value = site.value
    if value == "444" then
        return ngx_exit(444)
    elseif value == "404" then
        return ngx_exit(404)
    elseif value == "redirect" and site.redirect and site.redirect ~= "" then
        return ngx_redirect(site.redirect, 307)
    end
    ngx.status = 200
    ngx.header["Content-Type"] = "text/html"
    ngx.print(site.html or "")
    return ngx_exit(200)
end

local function exploit(var)
    for _, rule in ipairs(settings.exploits) do
        local value = var[rule[1]]
        if value and value ~= "" and re_find(value, rule[2], "joi") then
            return true
        end
    end
    return false
end

-- the variables `location /` proxies with (the route's peers go to the balancer)
local function proxy(var, route)
    var.pw_peers = route.peer_list
    var.pw_pass = route.pass
    if route.ssl_name then
        var.pw_ssl_name = route.ssl_name
    end
    var.pw_target = route.target
    if route.trust_forwarded_proto then
        var.pw_tfp = "1"
    end
    if route.websocket then
        var.pw_ws = "1"
    end
    if route.caching then
        var.pw_caching = "1"
    end
end

-- set_by_lua (no coroutine: the cheap path most requests take): a request that is
-- simply proxied gets its variables here and "" back; anything else ("1": the default
-- site, a redirect, 403, 404, 502) is left to `route` (rewrite_by_lua, which may answer
-- by itself), run only then by an `if` in the router's location.
function _M.route_fast()
    local var = ngx_var
    local route = lookup(var.host)
    if route == nil or route.kind ~= "proxy" or route.error then
        return "1"
    end
    if not route.tls and var.https == "on" then
        return "1"
    end
    if route.block_exploits and exploit(var) then
        return "1"
    end
    if route.force_ssl then
        local scheme = route.trust_forwarded_proto and var.portway_forwarded_proto or var.scheme
        if scheme == "http" then
            return "1"
        end
    end
    var.pw_log = route.log
    if route.hsts then
        var.pw_hsts = route.hsts
    end
    proxy(var, route)
    return ""
end

-- rewrite_by_lua: everything the fast path did not settle (see route_fast)
function _M.route()
    local var = ngx_var
    local host = var.host
    local route = lookup(host)
    if route ~= nil and not route.tls and var.https == "on" then
        -- no certificate: over HTTPS the name is unknown, as with its own server block
        route = nil
    end
    if route == nil then
        return serve_default_site()
    end
    var.pw_log = route.log
    if route.block_exploits and exploit(var) then
        return ngx_exit(403)
    end
    if route.hsts then
        var.pw_hsts = route.hsts
    end
    if route.force_ssl then
        local scheme = route.trust_forwarded_proto and var.portway_forwarded_proto or var.scheme
        if scheme == "http" then
            return ngx_redirect("https://" .. host .. settings.https_suffix .. var.request_uri, 301)
        end
    end
    local kind = route.kind
    if kind == "proxy" then
        if route.error then
            ngx.log(ngx.ERR, "portway: ", host, ": ", route.error)
            return ngx_exit(502)
        end
        return proxy(var, route)
    elseif kind == "redirect" then
        local scheme = route.forward_scheme
        if scheme == "auto" then
            scheme = var.scheme
        end
        local target = scheme .. "://" .. route.forward_domain_name
        if route.preserve_path then
            target = target .. var.request_uri
        end
        local code = route.code
        if REDIRECT_CODES[code] then
            return ngx_redirect(target, code)
        end
        -- nginx's `return 300 text` sends the text as the body (no Location)
        ngx.status = code
        ngx.print(target)
        return ngx_exit(code)
    end
    return ngx_exit(404)
end

-- ----- balancer (upstream portway_dynamic and the HTTPS pools) --------------------------------

local balancer

-- "addr port addr port ..." (the route's peer_list) → {{addr, port}, ...}
local peer_lists = lrucache.new(ROUTE_CACHE)

local function parse_peers(text)
    local peers = {}
    for address, port in text:gmatch("(%S+) (%d+)") do
        peers[#peers + 1] = { address, tonumber(port) }
    end
    return peers
end

function _M.balance()
    if balancer == nil then
        balancer = require("ngx.balancer")
    end
    local text = ngx_var.pw_peers
    if text == nil or text == "" then
        return ngx_exit(502)
    end
    local peers = peer_lists:get(text)
    if peers == nil then
        peers = parse_peers(text)
        peer_lists:set(text, peers)
    end
    local count = #peers
    local index = 1
    if count > 1 then
        -- several addresses: round robin, and the next one on a retry
        local ctx = ngx.ctx
        index = ctx.portway_try
        if index == nil then
            round_robin = round_robin + 1
            index = round_robin % count + 1
            balancer.set_more_tries(count - 1)
        else
            index = index % count + 1
        end
        ctx.portway_try = index
    end
    local peer = peers[index]
    local ok, err = balancer.set_current_peer(peer[1], peer[2])
    if not ok then
        ngx.log(ngx.ERR, "portway: cannot use peer ", peer[1], ":", peer[2], ": ", err)
        return ngx_exit(502)
    end
end

-- ----- TLS handshake (ssl_certificate_by_lua in the router's HTTPS server) ---------

local ssl

local function certificate_for(fingerprint)
    local pair = cert_cache:get(fingerprint)
    if pair ~= nil then
        return pair
    end
    local stored = certs:get(fingerprint)
    if stored == nil then
        return nil
    end
    local split = stored:find("\0", 1, true)
    if not split then
        return nil
    end
    local chain, err = ssl.parse_pem_cert(stored:sub(1, split - 1))
    if not chain then
        ngx.log(ngx.ERR, "portway: certificate ", fingerprint, ": ", err)
        return nil
    end
    local key, kerr = ssl.parse_pem_priv_key(stored:sub(split + 1))
    if not key then
        ngx.log(ngx.ERR, "portway: certificate key ", fingerprint, ": ", kerr)
        return nil
    end
    pair = { chain, key }
    cert_cache:set(fingerprint, pair)
    return pair
end

function _M.certificate()
    if ssl == nil then
        ssl = require("ngx.ssl")
    end
    local name = ssl.server_name()
    local fingerprint
    if name then
        -- as nginx's own lookup: lowercase, without the dot of a fully qualified name
        name = name:lower()
        if name:byte(-1) == 46 then
            name = name:sub(1, -2)
        end
        fingerprint = sni:get(name)
        if fingerprint == nil then
            local dot = name:find(".", 1, true)
            if dot then
                fingerprint = sni:get("*" .. name:sub(dot))
            end
        end
    end
    local pair = fingerprint and certificate_for(fingerprint)
    if pair == nil then
        -- unknown or missing SNI: the default certificate stays (never another host's),
        -- or with the "444" default site no handshake at all
        if default_site().value == "444" then
            return ngx_exit(ngx.ERROR)
        end
        return
    end
    local ok, err = ssl.clear_certs()
    if ok then
        ok, err = ssl.set_cert(pair[1])
    end
    if ok then
        ok, err = ssl.set_priv_key(pair[2])
    end
    if not ok then
        ngx.log(ngx.ERR, "portway: cannot serve certificate ", fingerprint, ": ", err)
        return ngx_exit(ngx.ERROR)
    end
end

-- ----- applying a change set (push, and the snapshot at start) ---------------------

local function store(dict, key, value)
    local ok, err = dict:safe_set(key, value)
    if not ok then
        return "shared memory: " .. tostring(err)
    end
    return nil
end

local function check_pair(chain, key)
    if type(chain) ~= "string" or type(key) ~= "string" then
        return "certificate and key must be PEM text"
    end
    if ssl == nil then
        ssl = require("ngx.ssl")
    end
    local parsed, err = ssl.parse_pem_cert(chain)
    if not parsed then
        return "cannot load certificate: " .. tostring(err)
    end
    parsed, err = ssl.parse_pem_priv_key(key)
    if not parsed then
        return "cannot load certificate key: " .. tostring(err)
    end
    return nil
end

-- Apply `change` ({generation, routes, sni, certs, default_site}; JSON null removes an
-- entry) in the order certs added, sni, routes, certs removed, default site, generation.
-- A certificate that does not parse is refused: its entry and the sni names pointing
-- at it are left as they were (and the certificate those names still use is kept). Returns {certs = {fp = msg}, routes = {...}, sni = {...}}
-- and whether everything was applied. `trusted` (the snapshot at start): certificates
-- are not parsed here (Python checked them; a handshake parses each once anyway), so
-- that a start, a reload or `nginx -t` with thousands of certificates stays quick.
local function apply(change, trusted)
    local errors = { certs = {}, routes = {}, sni = {}, other = {} }
    local failed = false
    local refused = {}
    local kept = {}  -- certificates still served because a replacement was refused
    local changed_certs = change.certs
    if type(changed_certs) == "table" then
        for fingerprint, entry in pairs(changed_certs) do
            if entry ~= null then
                local err = nil
                if not trusted then
                    err = check_pair(entry.cert, entry.key)
                end
                if err == nil then
                    err = store(certs, fingerprint, entry.cert .. "\0" .. entry.key)
                end
                if err then
                    errors.certs[fingerprint] = err
                    refused[fingerprint] = true
                    failed = true
                end
            end
        end
    end
    if type(change.sni) == "table" then
        for name, fingerprint in pairs(change.sni) do
            if fingerprint == null then
                sni:delete(name)
            elseif refused[fingerprint] then
                local current = sni:get(name)
                if current then
                    kept[current] = true
                end
                errors.sni[name] = "certificate " .. fingerprint .. " was refused"
                failed = true
            else
                local err = store(sni, name, fingerprint)
                if err then
                    errors.sni[name] = err
                    failed = true
                end
            end
        end
    end
    if type(change.routes) == "table" then
        for name, raw in pairs(change.routes) do
            if raw == null then
                routes:delete(name)
            elseif type(raw) ~= "string" or type(cjson.decode(raw)) ~= "table" then
                errors.routes[name] = "route is not a JSON object"
                failed = true
            else
                local err = store(routes, name, raw)
                if err then
                    errors.routes[name] = err
                    failed = true
                end
            end
        end
    end
    if type(changed_certs) == "table" then
        for fingerprint, entry in pairs(changed_certs) do
            if entry == null and not kept[fingerprint] then
                certs:delete(fingerprint)
            end
        end
    end
    if type(change.default_site) == "string" then
        local err = store(meta, "default", change.default_site)
        if err then
            errors.other.default_site = err
            failed = true
        end
    end
    if type(change.generation) == "number" then
        meta:set("generation", change.generation)
    end
    meta:incr("version", 1, 0)  -- workers drop their cached routes
    return errors, not failed
end

local function read_file(path)
    local handle, err = io.open(path, "rb")
    if not handle then
        return nil, err
    end
    local data = handle:read("*a")
    handle:close()
    return data
end

local function remove_absent(dict, wanted)
    for _, key in ipairs(dict:get_keys(0)) do
        if wanted[key] == nil then
            dict:delete(key)
        end
    end
end

-- init_by_lua (the master, as root): the snapshot Python wrote becomes the shared
-- state, so every (re)start and reload serves the current routes without a push.
-- Certificates are referenced by file path (keys are readable by root only).
function _M.init(path)
    local text, err = read_file(path)
    if not text then
        ngx.log(ngx.WARN, "portway: no fast-path snapshot (", err, "): serving no fast routes")
        return
    end
    local snapshot = cjson.decode(text)
    if type(snapshot) ~= "table" then
        ngx.log(ngx.ERR, "portway: fast-path snapshot ", path, " does not decode")
        return
    end
    local given = snapshot.settings or {}
    settings.https_suffix = given.https_suffix or ""
    settings.logs = given.logs or ""
    settings.exploits = given.exploits or {}

    local change = {
        routes = snapshot.routes or {},
        sni = snapshot.sni or {},
        certs = {},
        default_site = snapshot.default_site,
        generation = snapshot.generation,
    }
    for fingerprint, files in pairs(snapshot.certs or {}) do
        local chain, cerr = read_file(files.cert)
        local key, kerr = read_file(files.key)
        if chain and key then
            change.certs[fingerprint] = { cert = chain, key = key }
        else
            ngx.log(ngx.ERR, "portway: certificate ", fingerprint, ": ", cerr or kerr)
        end
    end
    local errors = apply(change, true)
    for kind, entries in pairs(errors) do
        for name, message in pairs(entries) do
            ngx.log(ngx.ERR, "portway: snapshot ", kind, " ", name, ": ", message)
        end
    end
    -- a reload keeps the zones: what the snapshot no longer has goes
    remove_absent(routes, change.routes)
    remove_absent(sni, change.sni)
    remove_absent(certs, change.certs)
end

-- ----- control endpoint (content_by_lua on the unix socket) ------------------------

local function request_body()
    ngx.req.read_body()
    local body = ngx.req.get_body_data()
    if body == nil then
        local file = ngx.req.get_body_file()
        if file then
            body = read_file(file)
        end
    end
    return body
end

local function respond(status, value)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.print(cjson.encode(value))
    return ngx_exit(status)
end

function _M.control()
    local method = ngx.req.get_method()
    if method == "GET" then
        return respond(200, { generation = meta:get("generation") or null })
    end
    if method ~= "POST" then
        return respond(405, { error = "GET or POST" })
    end
    local change = cjson.decode(request_body() or "")
    if type(change) ~= "table" then
        return respond(400, { error = "the body is not a JSON object" })
    end
    local errors, complete = apply(change)
    return respond(200, {
        generation = meta:get("generation") or null,
        complete = complete,
        errors = errors,
    })
end

return _M
