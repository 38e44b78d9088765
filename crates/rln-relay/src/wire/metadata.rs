//! `/vac/waku/metadata/1.0.0`: a peer's cluster id and the shards it relays. Request and
//! response have the same fields.
//!
//! `shards` (field 2) is written unpacked, one tag per shard: js-waku reads only that form
//! (a packed field 2 is misread). Both forms are read, and nwaku's packed field 3 as well.

use prost::Message as _;

use super::message::WireError;

/// The metadata a node announces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// The cluster id (absent in a request from a peer that has none).
    pub cluster_id: Option<u32>,
    /// The shards relayed, in the cluster.
    pub shards: Vec<u32>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct MetadataProto {
    #[prost(uint32, optional, tag = "1")]
    cluster_id: Option<u32>,
    #[prost(uint32, repeated, packed = "false", tag = "2")]
    shards: Vec<u32>,
    /// Written packed by nwaku beside field 2; only read.
    #[prost(uint32, repeated, tag = "3")]
    shards_packed: Vec<u32>,
}

impl Metadata {
    /// Encodes as a `WakuMetadataRequest` / `WakuMetadataResponse`.
    pub fn encode(&self) -> Vec<u8> {
        MetadataProto {
            cluster_id: self.cluster_id,
            shards: self.shards.clone(),
            shards_packed: Vec::new(),
        }
        .encode_to_vec()
    }

    /// Decodes either message; the shards of fields 2 and 3 are merged, sorted, deduplicated.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let raw = MetadataProto::decode(bytes).map_err(|e| WireError::Protobuf(e.to_string()))?;
        let mut shards = raw.shards;
        shards.extend(raw.shards_packed);
        shards.sort_unstable();
        shards.dedup();
        Ok(Self {
            cluster_id: raw.cluster_id,
            shards,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_written_unpacked_and_read_in_every_form() {
        let m = Metadata {
            cluster_id: Some(1),
            shards: vec![0, 3],
        };
        // cluster_id = 1, then field 2 twice (tag 0x10).
        assert_eq!(m.encode(), vec![0x08, 1, 0x10, 0, 0x10, 3]);
        assert_eq!(Metadata::decode(&m.encode()).unwrap(), m);
        // Packed field 2 (tag 0x12) and nwaku's packed field 3 (tag 0x1a).
        let packed = [0x08, 1, 0x12, 2, 0, 3, 0x1a, 2, 3, 5];
        assert_eq!(
            Metadata::decode(&packed).unwrap(),
            Metadata {
                cluster_id: Some(1),
                shards: vec![0, 3, 5]
            }
        );
        assert_eq!(Metadata::decode(&[]).unwrap(), Metadata::default());
        assert!(Metadata::decode(&[0x08]).is_err());
    }
}
