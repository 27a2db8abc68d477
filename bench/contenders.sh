# bench/contenders.sh: the configs of the contenders and of the origin, sourced by bench/run
# and bench/profile so both measure the same nginx, HAProxy and ringway. Functions print a
# config on stdout; they need $NGINX (the nginx binary) and nothing else.

nginx_common() {  # prefix
  cat <<EOF
pid $1/nginx.pid;
lock_file $1/nginx.lock;
error_log $1/error.log warn;
worker_processes 1;
worker_rlimit_nofile 65536;
events { worker_connections 16384; }
EOF
}

nginx_temp_paths() {  # prefix: keep nginx's compiled-in /var/lib/nginx temp paths out of the picture
  local v; v=$("$NGINX" -V 2>&1)
  echo "client_body_temp_path $1/tmp/body; proxy_temp_path $1/tmp/proxy;"
  [[ $v == *without-http_fastcgi_module* ]] || echo "fastcgi_temp_path $1/tmp/fastcgi;"
  [[ $v == *without-http_uwsgi_module* ]] || echo "uwsgi_temp_path $1/tmp/uwsgi;"
  [[ $v == *without-http_scgi_module* ]] || echo "scgi_temp_path $1/tmp/scgi;"
}

# The origin: nginx, 1 worker, static files from ROOT with sendfile, on each PORT. EXTRA goes
# inside the http block (bench/run's stub_status server).
origin_conf() {  # prefix root extra port...
  local prefix=$1 root=$2 extra=$3 p
  shift 3
  nginx_common "$prefix"
  echo "http {"
  nginx_temp_paths "$prefix"
  cat <<EOF
  access_log off;
  keepalive_requests 1000000000;
  keepalive_timeout 600s;
  sendfile on;
  open_file_cache max=16 inactive=600s;
  open_file_cache_valid 600s;
  types { }
  default_type text/plain;
  server {
EOF
  for p in "$@"; do echo "    listen 127.0.0.1:$p;"; done
  cat <<EOF
    root $root;
    location / { }
  }
EOF
  [[ -z $extra ]] || echo "  $extra"
  echo "}"
}

nginx_proxy_conf() {  # prefix front_port origin_port
  nginx_common "$1"
  echo "http {"
  nginx_temp_paths "$1"
  cat <<EOF
  access_log off;
  # generous to nginx: no connection recycling after 1000 requests (the default) on either side
  keepalive_requests 1000000000;
  keepalive_timeout 600s;
  upstream origin {
    server 127.0.0.1:$3;
    keepalive 128;
    keepalive_requests 1000000000;
    keepalive_timeout 600s;
  }
  server {
    listen 127.0.0.1:$2;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
}

haproxy_conf() {  # front_port origin_port
  cat <<EOF
global
    nbthread 1
    maxconn 4096

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 600s
    maxconn 4096

frontend fe
    bind 127.0.0.1:$1
    default_backend be

backend be
    http-reuse always
    server origin 127.0.0.1:$2
EOF
}

ringway_conf() {  # front_port origin_port driver admin_listen ("" for none) [state_dir]
  cat <<EOF
[server]
listen = ["127.0.0.1:$1"]
workers = 1
driver = "$3"
admin_listen = "$4"
EOF
  if [[ -n ${5:-} ]]; then echo "state_dir = \"$5\""; fi
  cat <<EOF

[[routes]]
path = "/{proxy+}"
method = "ANY"
integration = { type = "http_proxy", uri = "http://127.0.0.1:$2/{proxy}" }
EOF
}
