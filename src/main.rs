//! The `glm-gateway` binary: raises the open-file limit, then hands over to the CLI.

fn main() -> std::process::ExitCode {
    // Best effort: each client connection takes a file handle.
    let _ = glm_gateway::server::raise_file_limit();
    glm_gateway::cli::main()
}
