//! The `glm-gateway` binary: raises the open-file limit, then hands over to the CLI.

/// mimalloc: per-thread free lists, so the many small allocations of a request neither take
/// glibc's arena locks nor fragment a long-running process.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // Best effort: each client connection takes a file handle.
    let _ = glm_gateway::server::raise_file_limit();
    glm_gateway::cli::main()
}
