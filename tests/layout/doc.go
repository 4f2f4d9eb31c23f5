// Package layout checks the repository's dependency rules: the source and
// sink connectors never import each other (DESIGN.md), so either one can be
// built, deployed and upgraded alone, and no product package imports the test
// environment under tests/.
package layout
