//! The `ringway` command: `run`, `check`, `import`, `reload`, `--version`.

use mimalloc::MiMalloc;
use ringway::config;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

const USAGE: &str = "\
usage: ringway run [--config FILE]   serve (default config: /etc/ringway/ringway.toml, else the built-in demo)
       ringway run --config FILE --upgrade
                                     take over the listening sockets of the running process
                                     (server.control_socket), which then drains and exits
       ringway check FILE            validate a config and print its route table (FILE may be an
                                     OpenAPI/Swagger document, .json/.yaml, or an overlay naming one)
       ringway import FILE           print an OpenAPI/Swagger document (or an overlay naming one)
                                     as native TOML config
       ringway reload [--config FILE]
                                     check FILE, then ask the running gateway (on the file's
                                     admin_listen) to reload it; same as kill -HUP
       ringway --version";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["--version"] | ["-V"] | ["version"] => {
            println!("ringway {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        ["check", file] => check(file),
        ["import", file] => import(file),
        ["reload"] => reload(config::SYSTEM_PATH),
        ["reload", "--config", file] | ["reload", "-c", file] => reload(file),
        ["run"] => run(None, false),
        ["run", "--config", file] | ["run", "-c", file] => run(Some(file), false),
        ["run", "--config", file, "--upgrade"] | ["run", "-c", file, "--upgrade"] => run(Some(file), true),
        ["--help"] | ["-h"] | ["help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn check(file: &str) -> ExitCode {
    match config::load_with_warnings(file) {
        Ok((plan, warnings)) => {
            for w in &warnings {
                eprintln!("{w}");
            }
            println!(
                "{}: ok ({} routes, {} stages, {} upstreams)",
                file,
                plan.routes.len(),
                if plan.staged { plan.stages.len() } else { 0 },
                plan.upstreams.len()
            );
            print!("{}", plan.route_table());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the native TOML config an OpenAPI document (or an overlay naming one) becomes;
/// warnings go to stderr (and into the text as comments).
fn import(file: &str) -> ExitCode {
    let converted = config::read(file).and_then(|src| config::openapi::convert(file, &src));
    match converted {
        Ok(Some(c)) => {
            for w in &c.warnings {
                eprintln!("{w}");
            }
            print!("{}", c.toml);
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!("{file}: not an OpenAPI or Swagger document, nor a config with [api] openapi = \"...\"");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Validates the file, then POSTs /reload to the admin listener it names.
fn reload(file: &str) -> ExitCode {
    use std::io::{Read, Write};
    let plan = match config::load(file) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(addr) = plan.server.admin_listen else {
        eprintln!("{file}: admin_listen is off; send SIGHUP to the ringway process instead");
        return ExitCode::FAILURE;
    };
    let answer = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(3)).and_then(|mut s| {
        s.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
        s.write_all(b"POST /reload HTTP/1.1\r\nHost: ringway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    });
    match answer {
        Err(e) => {
            eprintln!("ringway reload: cannot reach the gateway's admin listener {addr}: {e}");
            ExitCode::FAILURE
        }
        Ok(text) => {
            let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            let message = serde_json::from_str::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| body.to_string());
            if text.starts_with("HTTP/1.1 200") {
                println!("{message}");
                ExitCode::SUCCESS
            } else {
                eprintln!("ringway reload: {message}");
                ExitCode::FAILURE
            }
        }
    }
}

fn run(file: Option<&str>, upgrade: bool) -> ExitCode {
    let loaded = match file {
        Some(f) => config::load(f),
        None if std::path::Path::new(config::SYSTEM_PATH).exists() => config::load(config::SYSTEM_PATH),
        None => config::compile::compile("<built-in demo config>", config::DEMO),
    };
    let plan = match loaded {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("ringway: config {} ({} routes)", plan.source, plan.routes.len());
    match ringway::server::serve(plan, upgrade) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringway: {e}");
            ExitCode::FAILURE
        }
    }
}
