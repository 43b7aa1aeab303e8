//! `UnetConfig` reads diffusers' `config.json` and rejects what it cannot build, by field.

use cdm_models::{Error, UnetConfig};

fn parse(json: &str) -> UnetConfig {
    serde_json::from_str(json).unwrap()
}

#[test]
fn missing_keys_take_diffusers_defaults_and_unknown_keys_are_ignored() {
    let config = parse(r#"{ "_class_name": "UNet2DModel", "_diffusers_version": "0.42.1", "future_key": 1 }"#);
    assert_eq!(config, UnetConfig::default());
    assert_eq!(config.attention_head_dim, Some(8));
    // an explicit null means one attention head
    assert_eq!(parse(r#"{ "attention_head_dim": null, "sample_size": [16, 24] }"#).attention_head_dim, None);
}

#[test]
fn serialised_config_round_trips() {
    let config = UnetConfig { block_out_channels: vec![32, 64, 64, 64], ..UnetConfig::default() };
    let json = serde_json::to_string(&config).unwrap();
    assert!(json.contains("\"_class_name\":\"UNet2DModel\""));
    assert_eq!(parse(&json), config);
}

#[test]
fn unsupported_variants_are_rejected_naming_the_field() {
    let cases = [
        (
            r#"{ "down_block_types": ["DownBlock2D", "SkipDownBlock2D", "DownBlock2D", "DownBlock2D"] }"#,
            "down_block_types[1]",
        ),
        (r#"{ "up_block_types": ["AttnSkipUpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D"] }"#, "up_block_types[0]"),
        (r#"{ "mid_block_type": "UNetMidBlock2DCrossAttn" }"#, "mid_block_type"),
        (r#"{ "time_embedding_type": "fourier" }"#, "time_embedding_type"),
        (r#"{ "act_fn": "mish" }"#, "act_fn"),
        (r#"{ "resnet_time_scale_shift": "spatial" }"#, "resnet_time_scale_shift"),
        (r#"{ "class_embed_type": "timestep" }"#, "class_embed_type"),
        (r#"{ "num_class_embeds": 10 }"#, "num_class_embeds"),
        (r#"{ "downsample_type": "resnet" }"#, "downsample_type"),
        (r#"{ "_class_name": "UNet2DConditionModel" }"#, "_class_name"),
    ];
    for (json, field) in cases {
        match parse(json).validate() {
            Err(Error::UnsupportedConfig { field: got, .. }) => assert_eq!(got, field, "{json}"),
            other => panic!("{json}: expected UnsupportedConfig, got {other:?}"),
        }
    }
}

#[test]
fn inconsistent_sizes_are_rejected_naming_the_field() {
    let cases = [
        (r#"{ "block_out_channels": [32, 64] }"#, "down_block_types"),
        (r#"{ "norm_num_groups": 5 }"#, "norm_num_groups"),
        (r#"{ "layers_per_block": 0 }"#, "layers_per_block"),
        (r#"{ "attention_head_dim": 0 }"#, "attention_head_dim"),
        (r#"{ "dropout": 1.5 }"#, "dropout"),
        (r#"{ "block_out_channels": [] , "down_block_types": [], "up_block_types": [] }"#, "block_out_channels"),
    ];
    for (json, field) in cases {
        match parse(json).validate() {
            Err(Error::InvalidArgument { field: got, .. }) => assert_eq!(got, field, "{json}"),
            other => panic!("{json}: expected InvalidArgument, got {other:?}"),
        }
    }
}
