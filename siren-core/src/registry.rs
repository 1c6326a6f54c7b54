//! One `inventory` registry per slot.
//!
//! A plugin is a type implementing [`Plugin`] (its validated parameters and a one-line summary)
//! and the slot's trait. It registers under a stable kebab-case name (third parties use
//! `"org.name"`) with the slot's macro, e.g.
//!
//! ```ignore
//! siren_core::register_baseline!("user-avg", UserAverage);
//! ```
//!
//! Each slot's table is built once, on first use. A name registered twice in one slot is an
//! error (reported by [`check_all`], which the CLI calls at start-up); an unknown name is an
//! error listing the sorted valid names.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;

use crate::{CoreError, Result};

/// A plugin's free-form parameters (stage 1 of reading a config: `[slot.params]`).
pub type Params = toml::Table;

/// Deserialises a plugin's params (stage 2); errors name the slot and plugin and the key.
pub fn parse_params<T: DeserializeOwned>(slot: &str, name: &str, params: &Params) -> Result<T> {
    params.clone().try_into::<T>().map_err(|e| {
        CoreError::config(
            format!("params of {slot} `{name}`"),
            e.to_string().trim_end().to_string(),
        )
    })
}

/// A type that can fill a slot: how to build it from its config parameters.
pub trait Plugin: Sized {
    /// The plugin's parameters, deserialised from `[slot.params]`. Use
    /// `#[serde(deny_unknown_fields)]` and document every field and its default.
    type Params: DeserializeOwned;
    /// One line for `siren plugins`.
    const SUMMARY: &'static str;
    /// True when `Params` has a `device` field (a device spec such as `tch-cpu`). Stages then
    /// fill it with the run's `device` unless the config sets it (see [`build_on`]).
    const DEVICE_PARAM: bool = false;
    /// Validates the parameters and builds the plugin. Invalid values fail here, before any
    /// work starts.
    fn from_params(params: Self::Params) -> Result<Self>;
}

/// A duplicate registration found while building a table: name, first file, second file.
#[doc(hidden)]
pub type Duplicate = (String, &'static str, &'static str);

/// The lazily built table of one slot.
#[doc(hidden)]
pub type TableCell<T> = OnceLock<Result<Table<T>, Duplicate>>;

/// A slot: one of the traits in [`crate::traits`], as a trait object type.
pub trait Slot: 'static {
    /// Stable kebab-case name of the slot, e.g. `topic-clusterer`.
    const NAME: &'static str;
    /// One line saying what the slot does.
    const SUMMARY: &'static str;
    #[doc(hidden)]
    fn table() -> &'static TableCell<Self>;
}

/// Builds a boxed plugin from its parameters.
pub type BuildFn<T> = fn(&Params) -> Result<Box<T>>;

/// One registered plugin of slot `T`.
pub struct Registration<T: ?Sized + 'static> {
    /// Registered name.
    pub name: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// Source file that registered it (for duplicate reports).
    pub file: &'static str,
    /// Whether its params take a `device` (see [`Plugin::DEVICE_PARAM`]).
    pub device_param: bool,
    build: BuildFn<T>,
}

impl<T: ?Sized + 'static> Registration<T> {
    /// Used by the `register_*!` macros.
    pub const fn new(
        name: &'static str,
        summary: &'static str,
        file: &'static str,
        device_param: bool,
        build: BuildFn<T>,
    ) -> Self {
        Self {
            name,
            summary,
            file,
            device_param,
            build,
        }
    }
}

/// The registered plugins of one slot, by name.
pub struct Table<T: ?Sized + 'static> {
    entries: BTreeMap<&'static str, &'static Registration<T>>,
}

/// Implemented by the slot declaration macro: iterate over the inventory of one slot.
#[doc(hidden)]
pub trait Collected: Slot {
    fn iter() -> Box<dyn Iterator<Item = &'static Registration<Self>>>;
}

fn build_table<T: ?Sized + Collected>() -> Result<Table<T>, Duplicate> {
    let mut entries: BTreeMap<&'static str, &'static Registration<T>> = BTreeMap::new();
    for reg in T::iter() {
        if let Some(prev) = entries.insert(reg.name, reg) {
            return Err((reg.name.to_string(), prev.file, reg.file));
        }
    }
    Ok(Table { entries })
}

/// The table of slot `T`, built once. Fails when a name is registered twice.
pub fn slot_table<T: ?Sized + Collected>() -> Result<&'static Table<T>> {
    let cell = T::table();
    match cell.get_or_init(build_table::<T>) {
        Ok(t) => Ok(t),
        Err((name, first, second)) => Err(CoreError::DuplicatePlugin {
            slot: T::NAME,
            name: name.clone(),
            first,
            second,
        }),
    }
}

/// Sorted names registered in slot `T`.
pub fn names<T: ?Sized + Collected>() -> Result<Vec<String>> {
    Ok(slot_table::<T>()?
        .entries
        .keys()
        .map(|k| k.to_string())
        .collect())
}

/// The registration of `name` in slot `T`, or an error listing the valid names.
pub fn lookup<T: ?Sized + Collected>(name: &str) -> Result<&'static Registration<T>> {
    let t = slot_table::<T>()?;
    t.entries
        .get(name)
        .copied()
        .ok_or_else(|| CoreError::UnknownPlugin {
            slot: T::NAME,
            name: name.to_string(),
            valid: t.entries.keys().map(|k| k.to_string()).collect(),
        })
}

/// Resolves `name` in slot `T` and builds it from `params`.
pub fn build<T: ?Sized + Collected>(name: &str, params: &Params) -> Result<Box<T>> {
    (lookup::<T>(name)?.build)(params)
}

/// As [`build`], for a stage running on `device`: a plugin whose params take a `device`
/// ([`Plugin::DEVICE_PARAM`]) gets the run's device unless its params name one.
pub fn build_on<T: ?Sized + Collected>(
    name: &str,
    params: &Params,
    device: &str,
) -> Result<Box<T>> {
    let reg = lookup::<T>(name)?;
    if reg.device_param && !params.contains_key("device") {
        let mut p = params.clone();
        p.insert("device".into(), device.into());
        return (reg.build)(&p);
    }
    (reg.build)(params)
}

/// Name and summary of one registered plugin.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginInfo {
    /// Slot name.
    pub slot: &'static str,
    /// Plugin name.
    pub name: &'static str,
    /// One-line summary.
    pub summary: &'static str,
}

/// A slot and its registered plugins.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SlotInfo {
    /// Slot name.
    pub slot: &'static str,
    /// What the slot does.
    pub summary: &'static str,
    /// Plugins, sorted by name.
    pub plugins: Vec<PluginInfo>,
}

fn slot_info<T: ?Sized + Collected>() -> Result<SlotInfo> {
    let t = slot_table::<T>()?;
    Ok(SlotInfo {
        slot: T::NAME,
        summary: T::SUMMARY,
        plugins: t
            .entries
            .values()
            .map(|r| PluginInfo {
                slot: T::NAME,
                name: r.name,
                summary: r.summary,
            })
            .collect(),
    })
}

/// Declares every slot from one table and defines [`all_slots`] from the same list.
macro_rules! slot_table {
    ($($tr:ident, $name:literal, $summary:literal;)*) => {
        $($crate::__declare_slot!($crate::traits::$tr, $name, $summary);)*

        /// Every slot with its plugins, in pipeline order. Fails on the first duplicate name.
        pub fn all_slots() -> Result<Vec<SlotInfo>> {
            Ok(vec![$(slot_info::<dyn $crate::traits::$tr>()?,)*])
        }
    };
}

// The slot table: each slot's trait, name and one-line summary, in pipeline order. A new
// slot is its trait (in `traits/`), a line here and its `register_*!` macro below.
slot_table! {
    ComputeDevice, "device", "compute device for tensors (tch-cpu, tch-cuda:N, wgpu, flex, auto)";
    DatasetLoader, "dataset", "loads ratings and item texts into the in-memory data model with its splits";
    RatingBaseline, "rating-baseline", "classic rating predictors fitted on the history split";
    Retriever, "retriever", "proposes candidate items from implicit feedback, for reranking";
    TextEncoder, "text-encoder", "embeds item texts into L2-normalised vectors";
    TopicClusterer, "topic-clusterer", "groups item embeddings into K topics";
    TopicNamer, "topic-namer", "names each topic from its most central items";
    SketchBuilder, "sketch-builder", "turns a user's rated topics into liked / disliked topic lists";
    Backbone, "backbone", "decoder LLM architecture adapter (HF config.json; GGUF metadata and tensor names)";
    LoraTargets, "lora-targets", "chooses which linear sites receive LoRA adapters";
    Reward, "reward", "scores a completion against the true rating (GRPO)";
    PolicyTrainer, "policy-trainer", "stage 1: trains the policy to reason and rate (SFT, GRPO)";
    Internalizer, "internalizer", "stage 2: internalizes explicit reasoning into answer-only prediction";
    AlignmentLoss, "alignment-loss", "distance between student and teacher hidden states";
}

/// Builds every slot's table once; the first duplicate registration is an error. Call at
/// start-up.
pub fn check_all() -> Result<()> {
    all_slots().map(|_| ())
}

/// Declares a slot: its inventory and its [`Slot`] impl.
#[doc(hidden)]
#[macro_export]
macro_rules! __declare_slot {
    ($tr:path, $name:literal, $summary:literal) => {
        $crate::inventory::collect!($crate::registry::Registration<dyn $tr>);
        impl $crate::registry::Slot for dyn $tr {
            const NAME: &'static str = $name;
            const SUMMARY: &'static str = $summary;
            fn table() -> &'static $crate::registry::TableCell<Self> {
                static CELL: $crate::registry::TableCell<dyn $tr> = ::std::sync::OnceLock::new();
                &CELL
            }
        }
        impl $crate::registry::Collected for dyn $tr {
            fn iter() -> ::std::boxed::Box<
                dyn ::std::iter::Iterator<Item = &'static $crate::registry::Registration<Self>>,
            > {
                ::std::boxed::Box::new(
                    $crate::inventory::iter::<$crate::registry::Registration<dyn $tr>>.into_iter(),
                )
            }
        }
    };
}

/// Registers plugin type `$ty` under `$name` in the slot whose trait object type is `$tr`.
#[doc(hidden)]
#[macro_export]
macro_rules! __register {
    ($tr:ty, $name:literal, $ty:ty) => {
        const _: () = {
            fn __siren_build(
                params: &$crate::registry::Params,
            ) -> $crate::Result<::std::boxed::Box<$tr>> {
                let parsed = $crate::registry::parse_params::<<$ty as $crate::Plugin>::Params>(
                    <$tr as $crate::registry::Slot>::NAME,
                    $name,
                    params,
                )?;
                let plugin = <$ty as $crate::Plugin>::from_params(parsed)?;
                Ok(::std::boxed::Box::new(plugin))
            }
            $crate::inventory::submit! {
                $crate::registry::Registration::<$tr>::new(
                    $name,
                    <$ty as $crate::Plugin>::SUMMARY,
                    file!(),
                    <$ty as $crate::Plugin>::DEVICE_PARAM,
                    __siren_build,
                )
            }
        };
    };
}

/// Registers a [`crate::traits::ComputeDevice`].
#[macro_export]
macro_rules! register_device {
    ($name:literal, $ty:ty) => {
        $crate::__register!(dyn $crate::traits::ComputeDevice, $name, $ty);
    };
}
/// Registers a [`crate::traits::DatasetLoader`].
#[macro_export]
macro_rules! register_dataset {
    ($name:literal, $ty:ty) => {
        $crate::__register!(dyn $crate::traits::DatasetLoader, $name, $ty);
    };
}
/// Registers a [`crate::traits::RatingBaseline`].
#[macro_export]
macro_rules! register_baseline {
    ($name:literal, $ty:ty) => {
        $crate::__register!(dyn $crate::traits::RatingBaseline, $name, $ty);
    };
}
/// Registers a [`crate::traits::Retriever`].
#[macro_export]
macro_rules! register_retriever {
    ($name:literal, $ty:ty) => {
        $crate::__register!(dyn $crate::traits::Retriever, $name, $ty);
    };
}
/// Registers a [`crate::traits::TextEncoder`].
#[macro_export]
macro_rules! register_encoder {
    ($name:literal, $ty:ty) => {
        $crate::__register!(dyn $crate::traits::TextEncoder, $name, $ty);
    };
}
/// Registers a [`crate::traits::TopicClusterer`].
#[macro_export]
macro_rules! register_clusterer {
    ($name:literal, $ty:ty) => {
        $crate::__register!(dyn $crate::traits::TopicClusterer, $name, $ty);
    };
}
/// Registers a [`crate::traits::TopicNamer`].
#[macro_export]
macro_rules! register_namer {
    ($name:literal, $ty:ty) => {
        $crate::__register!(dyn $crate::traits::TopicNamer, $name, $ty);
    };
}
/// Registers a [`crate::traits::SketchBuilder`].
#[macro_export]
macro_rules! register_sketch {
    ($name:literal, $ty:ty) => {
        $crate::__register!(dyn $crate::traits::SketchBuilder, $name, $ty);
    };
}
/// Registers a [`crate::traits::Backbone`].
#[macro_export]
macro_rules! register_backbone {
    ($name:literal, $ty:ty) => {
        $crate::__register!(dyn $crate::traits::Backbone, $name, $ty);
    };
}
/// Registers a [`crate::traits::LoraTargets`].
#[macro_export]
macro_rules! register_lora_targets {
    ($name:literal, $ty:ty) => {
        $crate::__register!(dyn $crate::traits::LoraTargets, $name, $ty);
    };
}
/// Registers a [`crate::traits::Reward`].
#[macro_export]
macro_rules! register_reward {
    ($name:literal, $ty:ty) => {
        $crate::__register!(dyn $crate::traits::Reward, $name, $ty);
    };
}
/// Registers a [`crate::traits::PolicyTrainer`].
#[macro_export]
macro_rules! register_trainer {
    ($name:literal, $ty:ty) => {
        $crate::__register!(dyn $crate::traits::PolicyTrainer, $name, $ty);
    };
}
/// Registers a [`crate::traits::Internalizer`].
#[macro_export]
macro_rules! register_internalizer {
    ($name:literal, $ty:ty) => {
        $crate::__register!(dyn $crate::traits::Internalizer, $name, $ty);
    };
}
/// Registers a [`crate::traits::AlignmentLoss`].
#[macro_export]
macro_rules! register_alignment_loss {
    ($name:literal, $ty:ty) => {
        $crate::__register!(dyn $crate::traits::AlignmentLoss, $name, $ty);
    };
}
