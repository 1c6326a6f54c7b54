fn main() {
    siren_cli::main()
}
