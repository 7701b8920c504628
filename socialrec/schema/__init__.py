"""Table contracts: column-name constants, TableSpecs, and validation against them."""
