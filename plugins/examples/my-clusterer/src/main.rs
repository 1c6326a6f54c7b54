//! `my-siren`: the `siren` CLI with the built-in plugins and `example.farthest-first` linked.
use my_clusterer as _;

fn main() {
    siren_cli::main()
}
