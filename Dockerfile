# Portway's container image: Debian 12 + Debian's nginx + Portway from wheels.
#
# Built by scripts/build-image, whose build context is a staging directory holding
# app/ (Portway's wheel, its UI assets inside), deps/ (a wheel of every dependency), both
# made on the host, and entrypoint.py. Nothing inside the build reaches the network except apt's Debian mirror:
# pip installs with --no-index from those wheels.
ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim

# --- stage 1: a virtualenv with Portway's dependencies (python3-venv/pip only live here) ---
# Its own stage and layer: unchanged dependencies keep it (and its copy below) cached.
FROM ${BASE_IMAGE} AS deps
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update -q \
    && apt-get install -y -q --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
COPY deps/ /wheels/
RUN python3 -m venv /opt/portway \
    && /opt/portway/bin/pip install -q --no-index --no-cache-dir --find-links /wheels /wheels/*.whl \
    && /opt/portway/bin/pip uninstall -q -y pip \
    && echo /opt/portway-app > "$(/opt/portway/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/portway-app.pth"

# --- stage 2: Portway itself (the wheel with its UI assets), beside the dependencies ----
FROM deps AS app
COPY app/ /wheels/
RUN python3 -m venv /tmp/installer \
    && /tmp/installer/bin/pip install -q --no-index --no-deps --no-cache-dir --no-compile \
        --target /opt/portway-app /wheels/portway-*.whl \
    && rm -rf /opt/portway-app/bin \
    && /opt/portway/bin/python -m compileall -q /opt/portway-app \
    && /opt/portway/bin/python -m portway version

# --- stage 3: the image ------------------------------------------------------------------
FROM ${BASE_IMAGE}
ARG DEBIAN_FRONTEND=noninteractive
# nginx + stream module: the data plane; the Lua module, lua-resty-* and lua-cjson: the
# fast path's router (portway/nginx/fastpath.py); python3: Portway (no venv/pip/compilers
# here); tini: PID 1 that forwards signals to Portway; tzdata: TZ; ca-certificates: ACME CAs' HTTPS.
# Debian's nginx postinst would start nginx: policy-rc.d forbids it during the build.
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \
    && apt-get update -q \
    && apt-get install -y -q --no-install-recommends \
        nginx libnginx-mod-stream libnginx-mod-http-lua lua-resty-core lua-resty-lrucache \
        lua-cjson python3 tini tzdata ca-certificates publicsuffix \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/sbin/policy-rc.d \
    && rm -f /etc/nginx/sites-enabled/default \
    && ln -sf /dev/stderr /var/log/nginx/error.log
COPY --from=deps /opt/portway /opt/portway
COPY --from=app /opt/portway-app /opt/portway-app
COPY entrypoint.py /usr/local/bin/portway-entrypoint
RUN chmod 0755 /usr/local/bin/portway-entrypoint \
    && printf '#!/bin/sh\nexec /opt/portway/bin/python -m portway "$@"\n' > /usr/local/bin/portway \
    && chmod 0755 /usr/local/bin/portway

# Portway's own state lives in /data/portway, beside an NPM installation's files in /data
# (database.sqlite, nginx/, keys.json, ...), which Portway never writes.
ENV PORTWAY_DATA_DIR=/data/portway \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/portway/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
VOLUME ["/data", "/etc/letsencrypt"]
EXPOSE 80 81 443
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["/opt/portway/bin/python", "/usr/local/bin/portway-entrypoint", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/portway/bin/python", "/usr/local/bin/portway-entrypoint"]
CMD ["serve"]
