//! The `ringway` command: `run`, `check`, `--version`.

use mimalloc::MiMalloc;
use ringway::config;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

const USAGE: &str = "\
usage: ringway run [--config FILE]   serve (default config: /etc/ringway/ringway.toml, else the built-in demo)
       ringway check FILE            validate a config and print its route table
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
        ["run"] => run(None),
        ["run", "--config", file] | ["run", "-c", file] => run(Some(file)),
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
    match config::load(file) {
        Ok(plan) => {
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

fn run(file: Option<&str>) -> ExitCode {
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
    match ringway::server::serve(plan) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringway: {e}");
            ExitCode::FAILURE
        }
    }
}
