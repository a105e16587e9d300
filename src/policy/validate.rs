//! Raw policy → validated [`super::Policy`] (stage 2), every problem collected.
