/* store_file */
