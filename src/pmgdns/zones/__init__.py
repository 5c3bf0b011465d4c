"""From records to octoDNS: records, zone source, ownership processor, rendering, providers."""
