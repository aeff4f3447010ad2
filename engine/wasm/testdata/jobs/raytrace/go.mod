module example.com/raytrace

go 1.26
