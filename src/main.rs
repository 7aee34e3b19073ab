fn main() -> std::process::ExitCode {
    glm_gateway::cli::main()
}
