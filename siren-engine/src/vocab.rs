//! Growing the vocabulary: `<answer>` and `</answer>` as single tokens (the authors' setting,
//! METHOD.md stage 1). New rows of the embedding and of an untied `lm_head` start as the mean
//! of the rows of the tokens the string was split into before (a common initialisation that
//! keeps the model's behaviour on the tag close to what it was), so the result is the same
//! for every load of the same base model.

use burn::module::Param;
use burn::tensor::{Tensor, TensorData};

use super::decoder::Decoder;
use super::token_rows::{TokenRows, put_rows, take_rows};
use super::tokenizer::TextTokenizer;
use crate::{EngineError, Result};

/// The answer tags made single tokens by [`add_answer_tokens`].
pub const ANSWER_TOKENS: [&str; 2] = ["<answer>", "</answer>"];

fn rows(t: &Tensor<2>, ids: &[u32]) -> Result<Tensor<1>> {
    let [_, w] = t.dims();
    let mut acc = Tensor::<1>::zeros([w], &t.device());
    for &i in ids {
        acc = acc.add(t.clone().narrow(0, i as usize, 1).reshape([w]));
    }
    if ids.is_empty() {
        return Err(EngineError::Data(
            "a new token has no pieces to start from".into(),
        ));
    }
    Ok(acc.div_scalar(ids.len() as f64))
}

/// Adds `tokens` to the tokenizer and grows the model to match (see the module docs). Tokens
/// already single in the vocabulary are left alone. Returns the new ids.
pub fn add_tokens(
    model: Decoder,
    tok: &mut TextTokenizer,
    tokens: &[&str],
) -> Result<(Decoder, Vec<u32>)> {
    let pieces: Vec<Vec<u32>> = tokens
        .iter()
        .map(|t| tok.encode(t, false))
        .collect::<Result<_>>()?;
    let ids = tok.add_tokens(tokens)?;
    let mut model = model;
    let old = model.spec.vocab_size;
    let grown: Vec<(u32, &Vec<u32>)> = ids
        .iter()
        .zip(&pieces)
        .filter(|(id, _)| **id as usize >= old)
        .map(|(id, p)| (*id, p))
        .collect();
    if grown.is_empty() {
        return Ok((model, ids));
    }
    let new_vocab = tok.vocab_size().max(old);
    let emb = model.embed_tokens.weight.val();
    let device = emb.device();
    // Rows in id order: each new token gets the mean of its pieces; any other new slot of
    // the tokenizer (none in practice) gets zeros.
    let grow = |t: Tensor<2>| -> Result<Tensor<2>> {
        let [_, w] = t.dims();
        let mut out = vec![t.clone()];
        for slot in old..new_vocab {
            match grown.iter().find(|(id, _)| *id as usize == slot) {
                Some((_, p)) => out.push(rows(&t, p)?.reshape([1, w])),
                None => out.push(Tensor::<2>::zeros([1, w], &device)),
            }
        }
        Ok(Tensor::cat(out, 0))
    };
    let grad = emb.is_require_grad();
    model.embed_tokens.weight = Param::from_tensor(grow(emb.detach())?.set_require_grad(grad));
    if let Some(head) = model.lm_head.as_mut() {
        // burn stores the head as [hidden, vocab]: grow its transpose.
        let w = head.weight.val();
        let g = w.is_require_grad();
        let t = grow(w.detach().transpose())?.transpose();
        head.weight = Param::from_tensor(t.set_require_grad(g));
        if let Some(b) = head.bias.as_mut() {
            let v = b.val();
            let mut data = v
                .clone()
                .try_into_vec_as::<f32>()
                .map_err(|e| EngineError::Numeric(format!("reading lm_head.bias: {e:?}")))?;
            data.resize(new_vocab, 0.0);
            *b = Param::from_tensor(Tensor::from_data(
                TensorData::new(data, [new_vocab]),
                &device,
            ));
        }
    }
    model.spec.vocab_size = new_vocab;
    tracing::info!(
        "added {} single tokens ({}); vocabulary {old} → {new_vocab}",
        grown.len(),
        tokens.join(" ")
    );
    Ok((model, ids))
}

/// [`add_tokens`] with `<answer>` and `</answer>`.
pub fn add_answer_tokens(model: Decoder, tok: &mut TextTokenizer) -> Result<Decoder> {
    Ok(add_tokens(model, tok, &ANSWER_TOKENS)?.0)
}

impl Decoder {
    /// Makes the embedding rows (and untied `lm_head` rows) of `ids` trainable on their own,
    /// starting from their current values; every other parameter keeps its state. Ids out of
    /// the vocabulary or repeated are an error.
    pub fn train_token_rows(self, ids: &[u32]) -> Result<Self> {
        let v = self.spec.vocab_size;
        let mut seen = std::collections::BTreeSet::new();
        for &id in ids {
            if id as usize >= v || !seen.insert(id) {
                return Err(EngineError::Data(format!(
                    "trainable token ids must be distinct and below the vocabulary size {v} \
                     (got {ids:?})"
                )));
            }
        }
        if ids.is_empty() {
            return Ok(self);
        }
        let embed = take_rows(self.embed_tokens.weight.val().detach(), ids);
        let head = self
            .lm_head
            .as_ref()
            .map(|h| take_rows(h.weight.val().detach().transpose(), ids));
        self.with_token_rows(ids.to_vec(), embed, head)
    }

    /// Attaches token rows with the given values (`[n, hidden]` each).
    pub(crate) fn with_token_rows(
        mut self,
        ids: Vec<u32>,
        embed: Tensor<2>,
        head: Option<Tensor<2>>,
    ) -> Result<Self> {
        let h = self.spec.hidden_size;
        let n = ids.len();
        for (what, t) in
            std::iter::once(("embedding", &embed)).chain(head.iter().map(|t| ("lm_head", t)))
        {
            if t.dims() != [n, h] {
                return Err(EngineError::Data(format!(
                    "trainable {what} rows have shape {:?}; expected [{n}, {h}] for ids {ids:?}",
                    t.dims()
                )));
            }
        }
        if head.is_some() != self.lm_head.is_some() {
            return Err(EngineError::Data(
                "trainable lm_head rows need an untied lm_head (and an untied lm_head needs them)"
                    .into(),
            ));
        }
        self.token_rows = Some(TokenRows {
            embed: Param::from_tensor(embed),
            head: head.map(Param::from_tensor),
            ids,
            enabled: true,
        });
        Ok(self)
    }

    /// Writes the trained token rows into the embedding (and `lm_head`) and drops them.
    pub fn merge_token_rows(mut self) -> Self {
        let Some(tr) = self.token_rows.take() else {
            return self;
        };
        if !tr.enabled {
            return self;
        }
        let e = self.embed_tokens.weight.val().detach();
        let grad = e.is_require_grad();
        self.embed_tokens.weight =
            Param::from_tensor(put_rows(e, &tr.ids, tr.embed.val().detach()))
                .set_require_grad(grad);
        if let Some(head) = self.lm_head.as_mut() {
            let rows = tr.head.as_ref().unwrap_or(&tr.embed).val().detach();
            let w = head.weight.val().detach();
            let g = w.is_require_grad();
            head.weight = Param::from_tensor(put_rows(w.transpose(), &tr.ids, rows).transpose())
                .set_require_grad(g);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Batch;
    use crate::testkit::{tiny_decoder, tiny_tokenizer};
    use burn::tensor::Device;

    fn host(t: Tensor<2>) -> Vec<f32> {
        t.try_into_vec_as::<f32>().unwrap()
    }

    #[test]
    fn new_tokens_grow_both_matrices_from_their_pieces() {
        let device = Device::flex();
        let mut tok = tiny_tokenizer().unwrap();
        let model = tiny_decoder(3, &device).unwrap();
        let before = tok.encode("rate 4 <tag>", false).unwrap();
        let batch = Batch::left_padded(&[vec![6, 10]], 0, &device).unwrap();
        let old_logits = host(model.forward(&batch, None, false).logits.reshape([2, 13]));
        // `<tag>` was `<`, `tag`, `>`: three unknown words.
        let (model, ids) = add_tokens(model, &mut tok, &["<tag>", "rate"]).unwrap();
        assert_eq!(ids, vec![13, 6], "an existing token keeps its id");
        assert_eq!(model.spec.vocab_size, 14);
        assert_eq!(tok.encode("rate 4 <tag>", false).unwrap(), vec![6, 10, 13]);
        assert_ne!(before, vec![6, 10, 13]);
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-7);
        let emb = host(model.embed_tokens.weight.val());
        assert!(
            close(&emb[13 * 32..14 * 32], &emb[12 * 32..13 * 32]),
            "mean of <unk> ×3"
        );
        let head = host(model.lm_head.as_ref().unwrap().weight.val().transpose());
        assert!(close(&head[13 * 32..14 * 32], &head[12 * 32..13 * 32]));
        // Old tokens' logits are unchanged; the new token gets a column.
        let new_logits = host(model.forward(&batch, None, false).logits.reshape([2, 14]));
        for p in 0..2 {
            assert_eq!(
                &new_logits[p * 14..p * 14 + 13],
                &old_logits[p * 13..p * 13 + 13]
            );
        }
        // Adding again changes nothing.
        let (model, ids) = add_tokens(model, &mut tok, &["<tag>"]).unwrap();
        assert_eq!((ids, model.spec.vocab_size), (vec![13], 14));
    }
}
