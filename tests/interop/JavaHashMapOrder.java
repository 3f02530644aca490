// Prints how Java's HashMap orders header maps, for the HEADER_AND_TEXT serializer's unit test
// (src/sink/serializer.rs reads the output, tests/interop/java_hashmap_order.txt).
// Each line: the keys, space-separated, in the order they were put (Java's String order) into a
// new HashMap, each with the value "v" + its length in UTF-16 units; a tab; the map's toString().
// Regenerate: java tests/interop/JavaHashMapOrder.java > tests/interop/java_hashmap_order.txt
import java.util.*;

public class JavaHashMapOrder {
  public static void main(String[] args) {
    String[] names = {
      "timestamp", "host", "topic", "key", "partition", "file", "basename", "Severity",
      "Facility", "priority", "id", "uuid", "flume.client.log4j.logger.name", "a", "b", "c", "p",
      "q", "h\u00e9ader", "\ud83d\ude00", "Aa", "BB", "Ab", "x-forwarded-for", "Content-Type",
      "offset", "byteoffset", "line"
    };
    Random random = new Random(7);
    for (int n = 0; n < 40; n++) {
      List<String> all = new ArrayList<>(Arrays.asList(names));
      Collections.shuffle(all, random);
      List<String> keys = new ArrayList<>(all.subList(0, n % (names.length + 1)));
      Collections.sort(keys);
      Map<String, String> map = new HashMap<>();
      for (String k : keys) {
        map.put(k, "v" + k.length());
      }
      System.out.println(String.join(" ", keys) + "\t" + map);
    }
  }
}
