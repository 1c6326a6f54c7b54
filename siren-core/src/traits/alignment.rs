use burn::tensor::Tensor;

/// Slot `alignment-loss`: distance between student and teacher hidden states (Eq. 12).
///
/// Contract: inputs are `[layers, batch, hidden]`; the output is a scalar (shape `[1]`), the
/// mean over layers and batch; zero when the inputs are equal; the teacher is treated as a
/// constant (no gradient flows into it).
pub trait AlignmentLoss: Send + Sync {
    /// Loss between student (answer-only) and teacher (CoT) hidden states.
    fn loss(&self, student: Tensor<3>, teacher: Tensor<3>) -> Tensor<1>;
}
