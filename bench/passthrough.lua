-- wrk script for bench/passthrough.py: connect to 127.0.0.1 whatever the URL's host is,
-- so the URL's name is only the SNI name and Host header (no DNS or /etc/hosts entry).
function wrk.resolve(host, service)
  wrk.addrs = wrk.lookup("127.0.0.1", service)
end
