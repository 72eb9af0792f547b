//! The combining step of every reduction: how two operands of a collective reduce.

/// A reduction operation over byte buffers of whole elements.
///
/// `reduce(input, inout)` computes `inout[i] = input[i] (op) inout[i]` element by element.
/// When the op is not commutative, `input` holds the operand of the lower ranks, so that
/// a collective's result is `a0 op a1 op ... op a(n-1)` in rank order.
pub trait Reducer {
    /// `inout[i] = input[i] (op) inout[i]`; both buffers hold the same whole number of
    /// elements.
    fn reduce(&self, input: &[u8], inout: &mut [u8]);
    /// May the algorithm combine operands in any (fixed, rank-determined) order?
    fn commutative(&self) -> bool;
    /// Bytes per element: a buffer is only ever split at multiples of this.
    fn elem_size(&self) -> usize;
}
