include!("../../../backends/torch_rpath.rs");

fn main() {
    torch_rpath();
}
