// Apache Avro's Java reference checker (org.apache.avro.SchemaCompatibility)
// over the schema pairs server/tests/avro_evolutions.rs hands it: a JSON file
// of [{"name", "writer", "reader"}]. Prints one JSON object a line:
// {"name", "answer": "compatible" | "incompatible" | "invalid", "detail"}.
//
//   java -cp "$HOME/.cache/attest/avro-java-1.12.1/libs/*" Checker.java PAIRS.json
//
// Run as a single-file program (Java 11+), so nothing is built; the jars
// come from scripts/install.sh (step "avro").

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.File;
import org.apache.avro.Schema;
import org.apache.avro.SchemaCompatibility;

public class Checker {
  public static void main(String[] args) throws Exception {
    ObjectMapper json = new ObjectMapper();
    for (JsonNode pair : json.readTree(new File(args[0]))) {
      ObjectNode out = json.createObjectNode();
      out.put("name", pair.get("name").asText());
      try {
        // One parser a schema: both define the same names.
        Schema writer = new Schema.Parser().parse(pair.get("writer").toString());
        Schema reader = new Schema.Parser().parse(pair.get("reader").toString());
        SchemaCompatibility.SchemaPairCompatibility result =
            SchemaCompatibility.checkReaderWriterCompatibility(reader, writer);
        boolean ok =
            result.getType() == SchemaCompatibility.SchemaCompatibilityType.COMPATIBLE;
        out.put("answer", ok ? "compatible" : "incompatible");
        out.put("detail", ok ? "" : result.getResult().getIncompatibilities().toString());
      } catch (RuntimeException e) {
        // SchemaParseException, AvroTypeException (a bad default): not valid Avro.
        out.put("answer", "invalid");
        out.put("detail", e.toString());
      }
      System.out.println(json.writeValueAsString(out));
    }
  }
}
