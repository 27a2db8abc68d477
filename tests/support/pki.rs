//! A throwaway PKI made with the openssl CLI, and nginx serving HTTPS with its certificates:
//! real TLS peers for tests/tls.rs and tests/authorizers.rs.

use super::{free_port, temp_path};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A throwaway PKI in a temp dir: a CA and leaf certificates it signs.
pub struct Pki {
    pub dir: PathBuf,
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl CLI");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Pki {
    pub fn new() -> Pki {
        let dir = temp_path("ringway-pki", "d");
        std::fs::create_dir_all(&dir).unwrap();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend(["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=ringway test CA"]);
        openssl(&dir, &ca);
        Pki { dir }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_string()
    }

    /// `name.pem` + `name.key` for `cn`, valid for `sans` (`DNS:x`, `IP:y`), signed by the CA
    /// (or self-signed). `rsa`: an RSA 2048 key instead of P-256.
    pub fn leaf(&self, name: &str, cn: &str, sans: &str, self_signed: bool, rsa: bool) {
        let ext = format!(
            "subjectAltName={sans}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        );
        std::fs::write(self.dir.join(format!("{name}.ext")), ext).unwrap();
        let (key, pem, csr, extfile, subj) = (
            format!("{name}.key"),
            format!("{name}.pem"),
            format!("{name}.csr"),
            format!("{name}.ext"),
            format!("/CN={cn}"),
        );
        let mut req = vec!["req"];
        if rsa {
            req.extend(["-newkey", "rsa:2048", "-nodes"]);
        } else {
            req.extend(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]);
        }
        req.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(&self.dir, &req);
        let mut sign = vec!["x509", "-req", "-in", &csr, "-out", &pem, "-days", "2", "-extfile", &extfile];
        if self_signed {
            sign.extend(["-signkey", &key]);
        } else {
            sign.extend(["-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial"]);
        }
        openssl(&self.dir, &sign);
    }
}

/// nginx serving HTTPS on loopback with `cert`/`key`; answers with the connection's serial
/// number, the SNI name it got and the request count on the connection, and serves the
/// files given to [`Nginx::file`] under `/files/`.
pub struct Nginx {
    child: std::process::Child,
    pub port: u16,
    dir: PathBuf,
}

impl Nginx {
    pub fn start(cert: &str, key: &str) -> Nginx {
        let dir = temp_path("ringway-nginx", "d");
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        std::fs::create_dir_all(dir.join("www")).unwrap();
        let port = free_port();
        let conf = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
error_log {dir}/logs/error.log;
pid {dir}/nginx.pid;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  keepalive_requests 10000;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    location /files/ {{
      alias {dir}/www/;
      default_type application/json;
    }}
    location / {{
      default_type text/plain;
      return 200 "conn=$connection sni=$ssl_server_name n=$connection_requests uri=$request_uri\n";
    }}
  }}
}}
"#,
            dir = dir.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new("nginx")
            .args(["-p", dir.to_str().unwrap(), "-c", dir.join("nginx.conf").to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx (Debian package nginx; scripts/test installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx { child, port, dir }
    }
}

impl Nginx {
    /// Serves `body` at `https://127.0.0.1:PORT/files/NAME`.
    pub fn file(&self, name: &str, body: &str) -> String {
        std::fs::write(self.dir.join("www").join(name), body).unwrap();
        format!("https://127.0.0.1:{}/files/{name}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
