//! `--dataset` / `data.dataset`, parsed once into a typed spec.
//!
//! | spec | kind | what |
//! |---|---|---|
//! | `dino`, `moons`, …, `gmm1d` | points | a toy distribution (cdm-data's `Toy`) |
//! | `csv:PATH` | points | one point per line, optional header |
//! | `digits` | images | scikit-learn's 8×8 digits, embedded |
//! | `mnist:DIR`, `fashion-mnist:DIR` | images | IDX files (raw or `.gz`) |
//! | `cifar10:DIR` | images | CIFAR-10 binary batches |
//! | `folder:DIR` | images | PNG/JPEG files, resized |
//! | `hub:mnist`, `hub:fashion-mnist`, `hub:cifar10` | images | the hub's parquet files, through the Hugging Face cache (feature `hub`) |
//! | `hub:OWNER/NAME[/CONFIG]` | images | the train split of any image data set on the hub (feature `hub`) |
//!
//! The spec is stored in `config.json` as the same string, so saved runs read back unchanged.
//! `hub:` specs parse whether or not `cdm` was built with the `hub` feature (a config written by
//! one build reads in any other); only loading them needs it.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use cdm_data::Toy;

/// Whether a data set holds points (vectors) or images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataKind {
    /// Vectors: toys and CSV files; the MLPs.
    Points,
    /// Images `[C, H, W]`; the UNet.
    Images,
}

/// Which IDX family a directory holds (only the name differs; the files are read alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdxFamily {
    /// LeCun's MNIST digits.
    Mnist,
    /// Zalando's Fashion-MNIST.
    FashionMnist,
}

/// A parsed `--dataset`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatasetSpec {
    /// A toy distribution.
    Toy(Toy),
    /// Points from a CSV file.
    Csv(PathBuf),
    /// The embedded 8×8 digits.
    Digits,
    /// An IDX directory (train and t10k files).
    Idx(IdxFamily, PathBuf),
    /// A CIFAR-10 binary directory.
    Cifar10(PathBuf),
    /// A folder of images.
    Folder(PathBuf),
    /// A Hugging Face hub data set: `mnist`, `fashion-mnist`, `cifar10` or `OWNER/NAME[/CONFIG]`
    /// (cdm-data's `HubDataset`, which needs the `hub` feature).
    Hub(String),
}

impl DatasetSpec {
    /// Points or images.
    pub fn kind(&self) -> DataKind {
        match self {
            DatasetSpec::Toy(_) | DatasetSpec::Csv(_) => DataKind::Points,
            _ => DataKind::Images,
        }
    }

    /// The toy, if this is one.
    pub fn toy(&self) -> Option<Toy> {
        match self {
            DatasetSpec::Toy(t) => Some(*t),
            _ => None,
        }
    }
}

impl Default for DatasetSpec {
    fn default() -> Self {
        DatasetSpec::Toy(Toy::Dino)
    }
}

/// The prefixes of the specs that take a path.
const PATH_PREFIXES: [&str; 5] = ["csv", "mnist", "fashion-mnist", "cifar10", "folder"];

/// The hub data sets known by a short name.
const HUB_NAMES: [&str; 3] = ["mnist", "fashion-mnist", "cifar10"];

/// Whether `name` is a hub data set name: one of [`HUB_NAMES`], or `OWNER/NAME[/CONFIG]` with each
/// part ASCII letters, digits, `-`, `_` and `.`, not `.` or `..` (what cdm-data's `HubDataset`
/// accepts).
fn is_hub_name(name: &str) -> bool {
    let part = |p: &str| {
        !p.is_empty() && p != "." && p != ".." && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    let parts: Vec<&str> = name.split('/').collect();
    HUB_NAMES.contains(&name) || ((2..=3).contains(&parts.len()) && parts.into_iter().all(part))
}

impl FromStr for DatasetSpec {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        let s = s.trim();
        if s == "digits" {
            return Ok(DatasetSpec::Digits);
        }
        let Some((prefix, path)) = s.split_once(':') else {
            return s.parse::<Toy>().map(DatasetSpec::Toy).map_err(|e| {
                anyhow::anyhow!(
                    "{e}; or an image data set: digits, {}, hub:NAME",
                    PATH_PREFIXES.map(|p| format!("{p}:PATH")).join(", ")
                )
            });
        };
        if path.is_empty() {
            anyhow::bail!("dataset {s:?}: the path after {prefix:?} is empty");
        }
        let path = PathBuf::from(path);
        Ok(match prefix {
            "csv" => DatasetSpec::Csv(path),
            "mnist" => DatasetSpec::Idx(IdxFamily::Mnist, path),
            "fashion-mnist" => DatasetSpec::Idx(IdxFamily::FashionMnist, path),
            "cifar10" => DatasetSpec::Cifar10(path),
            "folder" => DatasetSpec::Folder(path),
            "hub" => {
                let name = path.to_string_lossy();
                if !is_hub_name(&name) {
                    anyhow::bail!(
                        "dataset {s:?}: after the prefix \"hub\" expected {} or OWNER/NAME[/CONFIG]",
                        HUB_NAMES.join(", ")
                    );
                }
                DatasetSpec::Hub(name.into_owned())
            }
            other => {
                anyhow::bail!(
                    "dataset {s:?}: unknown prefix {other:?} (expected one of {}, hub)",
                    PATH_PREFIXES.join(", ")
                )
            }
        })
    }
}

impl fmt::Display for DatasetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatasetSpec::Toy(t) => write!(f, "{t}"),
            DatasetSpec::Csv(p) => write!(f, "csv:{}", p.display()),
            DatasetSpec::Digits => f.write_str("digits"),
            DatasetSpec::Idx(IdxFamily::Mnist, p) => write!(f, "mnist:{}", p.display()),
            DatasetSpec::Idx(IdxFamily::FashionMnist, p) => write!(f, "fashion-mnist:{}", p.display()),
            DatasetSpec::Cifar10(p) => write!(f, "cifar10:{}", p.display()),
            DatasetSpec::Folder(p) => write!(f, "folder:{}", p.display()),
            DatasetSpec::Hub(name) => write!(f, "hub:{name}"),
        }
    }
}

impl serde::Serialize for DatasetSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for DatasetSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(|e: anyhow::Error| serde::de::Error::custom(format!("{e:#}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_round_trips_through_its_string() {
        for text in [
            "dino",
            "gmm1d",
            "csv:a/b.csv",
            "digits",
            "mnist:/d",
            "fashion-mnist:d",
            "cifar10:/c",
            "folder:x",
            "hub:mnist",
            "hub:fashion-mnist",
            "hub:cifar10",
            "hub:owner/name",
            "hub:some-one/data_set.v2/config",
        ] {
            let spec: DatasetSpec = text.parse().unwrap();
            assert_eq!(spec.to_string(), text);
            let json = serde_json::to_string(&spec).unwrap();
            assert_eq!(serde_json::from_str::<DatasetSpec>(&json).unwrap(), spec);
        }
        assert_eq!("Dino".parse::<DatasetSpec>().unwrap(), DatasetSpec::Toy(Toy::Dino));
    }

    #[test]
    fn kinds_follow_the_spec() {
        let kind = |s: &str| s.parse::<DatasetSpec>().unwrap().kind();
        assert_eq!(kind("moons"), DataKind::Points);
        assert_eq!(kind("csv:digits.csv"), DataKind::Points);
        for s in ["digits", "mnist:d", "fashion-mnist:d", "cifar10:d", "folder:d", "hub:mnist", "hub:o/n"] {
            assert_eq!(kind(s), DataKind::Images, "{s}");
        }
    }

    #[test]
    fn bad_specs_say_what_is_expected() {
        let err = |s: &str| format!("{:#}", s.parse::<DatasetSpec>().unwrap_err());
        assert!(err("dinosaur").contains("digits, csv:PATH"), "{}", err("dinosaur"));
        assert!(err("imagenet:/x").contains("unknown prefix \"imagenet\""), "{}", err("imagenet:/x"));
        assert!(err("csv:").contains("empty"), "{}", err("csv:"));
        for bad in ["hub:mnsit", "hub:a/", "hub:a/b/c/d", "hub:a/../b", "hub:/etc/passwd", "hub:a/b c"] {
            assert!(
                err(bad).contains("prefix \"hub\" expected mnist, fashion-mnist, cifar10 or OWNER/NAME"),
                "{}",
                err(bad)
            );
        }
        assert!(err("hub:").contains("empty"), "{}", err("hub:"));
    }
}
