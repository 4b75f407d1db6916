package neo4j

import "github.com/engram-ops/engram-ops/migrate"

// nodeRecord is the record of a node, for both sources: its object is its
// first label (Unlabelled without labels), all its labels are its tags. A
// node with several labels is one record of its first label's object, in
// counts too: both sources take the first of the labels the server gives
// (APOC writes the list Neo4j returns to the driver as well).
func nodeRecord(key string, labels []string, props map[string]any) migrate.Record {
	rec := migrate.Record{Object: Unlabelled, Key: key, Fields: props}
	if len(labels) > 0 {
		rec.Object = labels[0]
		rec.Tags = labels
	}
	return rec
}

// relationshipRecord is the record of a relationship, for both sources:
// its object is its type, and its one reference goes from its start node
// to its end node, each named by its first label and key.
func relationshipRecord(key, typ string, props map[string]any, startKey string, startLabels []string, endKey string, endLabels []string) migrate.Record {
	return migrate.Record{Object: typ, Key: key, Fields: props, Refs: []migrate.Reference{{Kind: typ,
		FromObject: firstLabel(startLabels), FromKey: startKey,
		ToObject: firstLabel(endLabels), ToKey: endKey}}}
}
