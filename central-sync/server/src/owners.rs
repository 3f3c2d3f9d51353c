//! Who owns a vehicle: the seam where the national vehicle registry plugs in, and a CSV stand-in for it.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// The owner of a vehicle, as the national registry would answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Owner {
    pub name: String,
    pub address: String,
    /// Citizen identity or company registration number.
    pub id_number: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    #[error("owner registry {path}")]
    File {
        path: String,
        #[source]
        source: csv::Error,
    },
    #[error("owner registry {path}, line {line}: want plate,name,address,id_number")]
    Malformed { path: String, line: usize },
    /// An external registry did not answer.
    #[error("owner registry unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Who owns a plate. The national vehicle registry is external; this is the seam it plugs into.
pub trait OwnerRegistry: Send + Sync {
    /// `Ok(None)`: the plate is not registered.
    fn lookup(&self, plate: &str) -> Result<Option<Owner>, OwnerError>;
}

/// A registry kept in a CSV file with the header `plate,name,address,id_number` (plates written either way,
/// "51F-123.45" or "51F12345").
#[derive(Debug, Default)]
pub struct FileOwnerRegistry {
    by_plate: HashMap<String, Owner>,
}

impl FileOwnerRegistry {
    pub fn load(path: &Path) -> Result<Self, OwnerError> {
        let file_err = |source| OwnerError::File { path: path.display().to_string(), source };
        let mut reader = csv::Reader::from_path(path).map_err(file_err)?;
        let mut by_plate = HashMap::new();
        for (i, row) in reader.records().enumerate() {
            let row = row.map_err(file_err)?;
            let field = |n: usize| row.get(n).map(str::trim).unwrap_or_default().to_string();
            if row.len() != 4 || field(0).is_empty() {
                return Err(OwnerError::Malformed { path: path.display().to_string(), line: i + 2 });
            }
            by_plate
                .insert(te_plate::compact(&field(0)), Owner { name: field(1), address: field(2), id_number: field(3) });
        }
        Ok(Self { by_plate })
    }
}

impl OwnerRegistry for FileOwnerRegistry {
    fn lookup(&self, plate: &str) -> Result<Option<Owner>, OwnerError> {
        Ok(self.by_plate.get(&te_plate::compact(plate)).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_registry_finds_a_plate_however_it_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("owners.csv");
        std::fs::write(&path, "plate,name,address,id_number\n51F-123.45,Nguyễn Văn A,\"12 Lê Lợi, Q1\",079123456789\n")
            .expect("write");
        let registry = FileOwnerRegistry::load(&path).expect("load");
        let owner = registry.lookup("51F12345").expect("lookup").expect("found");
        assert_eq!(owner.address, "12 Lê Lợi, Q1");
        assert_eq!(registry.lookup("30A-999.99").expect("lookup"), None);
        std::fs::write(&path, "plate,name\n51F-123.45,A\n").expect("write");
        assert!(FileOwnerRegistry::load(&path).is_err_and(|e| e.to_string().contains("line 2")));
    }
}
