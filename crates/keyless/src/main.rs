//! The `keyless` binary: `keyless serve` runs the server; the other
//! subcommands are the CLI for administrators and workloads (`cli`).

mod cli;
mod config;
mod listen;
mod serve;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "keyless", version, about = "S3-compatible object storage where workloads trade identity tokens for short-lived credentials")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: the S3 endpoint and the API endpoint.
    Serve(config::ServeArgs),
    #[command(flatten)]
    Cli(cli::Command),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(args) => runtime.block_on(serve::run(args)).map(|()| std::process::ExitCode::SUCCESS),
        Command::Cli(command) => runtime.block_on(cli::run(command)),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
