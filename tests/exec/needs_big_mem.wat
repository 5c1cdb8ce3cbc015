;; Import matching: wants a memory of at least 2 pages with a maximum of at most 4.
(module (import "prov" "mem" (memory 2 4)))
